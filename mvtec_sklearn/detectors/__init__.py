"""Outlier detectors following scikit-learn's score convention."""

__all__ = []
