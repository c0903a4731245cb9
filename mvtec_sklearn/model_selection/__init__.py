"""Cross-validation that trains on normal samples only."""

__all__ = []
