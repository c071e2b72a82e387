"""The version of the alien-events distributions (all released together)."""

__version__ = "0.1.0"
