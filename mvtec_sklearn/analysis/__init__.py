"""The dataset exploration report."""

__all__ = []
