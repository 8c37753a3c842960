"""Mosaic Memory: a self-hosted memory and semantic-search service for AI agents."""

__version__ = "0.1.0"
__all__ = ["__version__"]
