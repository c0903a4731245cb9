"""The benchmark runner, model registry and report writer."""

__all__ = []
