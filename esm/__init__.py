"""esm: a self-hosted event source mapping engine (Lambda's stream pollers, run anywhere)."""

__version__ = "0.1.0"
