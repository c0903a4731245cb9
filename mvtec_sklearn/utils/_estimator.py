"""The estimator-tag convention of the estimators whose input is images."""

from __future__ import annotations

__all__ = ["ImageEstimatorMixin"]


class ImageEstimatorMixin:
    """Mixin of the estimators whose ``X`` is images, not a 2-D feature array.

    Such an estimator takes a sequence of image paths or an image array of
    shape (n, H, W[, C]); its ``__sklearn_tags__`` says it does not take
    2-D arrays (``input_tags.two_d_array = False``), so that scikit-learn's
    estimator checks do not feed it tabular data. Put the mixin before
    :class:`~sklearn.base.BaseEstimator` in the bases.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from mvtec_sklearn.utils import ImageEstimatorMixin
    >>> class Reader(ImageEstimatorMixin, BaseEstimator):
    ...     pass
    >>> Reader().__sklearn_tags__().input_tags.two_d_array
    False
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags
