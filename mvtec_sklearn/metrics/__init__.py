"""Image and pixel metrics, scorers for GridSearchCV."""

__all__ = []
