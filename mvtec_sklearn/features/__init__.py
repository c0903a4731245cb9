"""Transformers from images to 2-D features."""

__all__ = []
