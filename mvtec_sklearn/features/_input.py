"""The input side of the image transformers: batch helpers and their shared base."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from mvtec_sklearn.datasets import check_image_input
from mvtec_sklearn.utils import ImageEstimatorMixin

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = ["ImageTransformer", "check_image_input", "image_slice", "image_source", "n_images"]


def n_images(paths, array):
    """Number of images in the output of :func:`check_image_input`."""
    return len(paths) if paths is not None else array.shape[0]


def image_source(paths, array):
    """The images of :func:`check_image_input`'s output, in the form :func:`load_images` accepts."""
    return paths if paths is not None else array


def image_slice(paths, array, start, stop):
    """A slice of the images, in the form :func:`load_images` accepts."""
    return paths[start:stop] if paths is not None else array[start:stop]


class ImageTransformer(ImageEstimatorMixin, TransformerMixin, BaseEstimator):
    """Base class of the transformers from images to features.

    ``fit`` validates the parameters and ``X`` (paths or an image array) and
    hands the output of :func:`check_image_input` to the subclass's
    ``_fit(paths, array)``; ``transform`` checks that the transformer is
    fitted, validates ``X`` the same way and returns the subclass's
    ``_transform(paths, array)``; ``get_feature_names_out`` returns the
    subclass's ``_feature_names()``, so ``set_output(transform="pandas")``
    works.
    """

    def _fit(self, paths, array) -> None:
        raise NotImplementedError

    def _transform(self, paths, array):
        raise NotImplementedError

    def _feature_names(self):
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike, y: object = None
    ) -> "ImageTransformer":
        """Fit on images (see the class description for what ``fit`` learns).

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._fit(*check_image_input(X))
        return self

    def transform(self, X: Sequence[str | os.PathLike[str]] | ArrayLike) -> NDArray:
        """Transform the images (see the class description for the output).

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images.

        Returns
        -------
        features : ndarray of shape (n, n_features_out)
            One row per image, or one image per image (n, H, W, C) for the
            pixel transformers with ``flatten=False``.
        """
        check_is_fitted(self)
        return self._transform(*check_image_input(X))

    def get_feature_names_out(self, input_features: None = None) -> NDArray[np.object_]:
        """Names of the output features, in output order.

        Parameters
        ----------
        input_features : None
            Ignored (the input is images).

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return np.asarray(self._feature_names(), dtype=object)
