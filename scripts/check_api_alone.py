"""
Build the alien-events-api wheel, install it alone in a fresh virtualenv, and prove it stands alone.

It must import with only attrs installed, work (the no-op default), and pull in none of
cattrs, pluggy, structlog, the SDK, or ``importlib.metadata``. Used by ``nox -s api_alone``
and by the test suite. Exit status 0 means all of that holds.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import venv

ROOT = pathlib.Path(__file__).resolve().parent.parent

PROBE = r"""
import importlib.util, json, sys
before = set(sys.modules)
import alien_events_api as api
loaded = set(sys.modules) - before
handle = api.AlienEvent.BuildingStack(stack="s").emit()
print(json.dumps({
    "noop": handle.is_noop,
    "version": api.__version__,
    "installed": {name: importlib.util.find_spec(name) is not None
                  for name in ("attrs", "cattrs", "pluggy", "structlog", "alien_events_sdk")},
    "heavy_imports": sorted(m for m in loaded if m.split(".")[0] in
                            ("cattrs", "pluggy", "structlog", "alien_events_sdk")
                            or m == "importlib.metadata"),
}))
"""


def run(*args: str | pathlib.Path) -> str:
    """Run a command, failing loudly with its output."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        msg = f"command failed ({done.returncode}): {' '.join(map(str, args))}"
        raise SystemExit(msg)
    return done.stdout


def main() -> int:
    """Build, install alone, probe; print the probe's findings and return 0 if they hold."""
    import json

    with tempfile.TemporaryDirectory(prefix="api-alone-") as tmp:
        work = pathlib.Path(tmp)
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            work / "wheels",
            ROOT / "dists" / "api",
        )
        wheels = list((work / "wheels").glob("alien_events_api-*.whl"))
        if len(wheels) != 1:
            msg = f"expected one api wheel, found {wheels}"
            raise SystemExit(msg)
        venv.create(work / "venv", with_pip=True, clear=True)
        python = work / "venv" / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", wheels[0])
        # Run from the temporary folder so the checkout's src/ cannot leak onto sys.path.
        found = json.loads(
            subprocess.run(
                [str(python), "-I", "-c", PROBE],
                capture_output=True,
                text=True,
                check=True,
                cwd=work,
            ).stdout
        )
    print(json.dumps(found, indent=2))
    expected_installed = {
        "attrs": True,
        "cattrs": False,
        "pluggy": False,
        "structlog": False,
        "alien_events_sdk": False,
    }
    ok = found["noop"] and found["installed"] == expected_installed and not found["heavy_imports"]
    print("api stands alone" if ok else "api does NOT stand alone")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
