"""kb: a curated knowledge-base compiler with agent batch orchestration."""

__version__ = "0.1.0"
