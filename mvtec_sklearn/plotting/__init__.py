"""Display objects and benchmark figures."""

__all__ = []
