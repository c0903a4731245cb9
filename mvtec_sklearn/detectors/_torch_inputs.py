"""The input side of the torch detectors: images, CNN feature maps or 2-D features.

A torch detector combines one of these mixins with
:class:`~mvtec_sklearn.detectors._torch_base.BaseTorchDetector`; the mixin turns
``X`` into the training and inference tensors (``_fit_data``, ``_predict_data``)
and sets the fitted attributes that describe the input.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils.validation import validate_data

from ..datasets import load_images
from ..utils import ImageEstimatorMixin
from ._nn._functional import augment_images

__all__ = ["FeatureMapInputMixin", "ImageInputMixin", "VectorInputMixin"]


def _check_divisible(shape, factor, what):
    """Raise when the working image size ``(h, w)`` is not a multiple of ``factor``."""
    h, w = shape
    if h % factor or w % factor:
        raise ValueError(
            f"The working image size {h}x{w} must be divisible by {factor} ({what}); "
            f"set image_size to a multiple of {factor}."
        )


class _ImageTags(ImageEstimatorMixin):
    """Input tags of the detectors on images: image arrays, not 2-D features."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


class ImageInputMixin(_ImageTags):
    """Images (paths or arrays) as input, resized to ``image_size`` (or kept as fitted).

    Sets ``n_channels_`` (1 or 3) and ``image_shape_`` (working ``(H, W)``).
    With ``image_size=None`` every image must have the size seen in ``fit``.
    Training batches go through the ``augment`` parameter: None, ``"flip"``,
    ``"default"`` (see :func:`~mvtec_sklearn.detectors._nn._functional.augment_images`)
    or a callable mapping a float batch (n, C, H, W) in [0, 1] on the device
    to a batch of the same shape. A model whose network needs the working size
    to be a multiple of some factor returns ``(factor, reason)`` from
    ``_size_multiple()``.
    """

    _input_attrs_doc = """n_channels_ : int
        1 (grayscale) or 3 (RGB), as in the training images.
    image_shape_ : tuple of int
        Working ``(H, W)``.
    """

    if TYPE_CHECKING:  # provided by the detector using the mixin
        image_size: int | tuple[int, int] | None

    def _size_multiple(self) -> tuple[int, str] | None:
        """``(factor, reason)``: the working size must be a multiple of factor (None: any)."""
        return None

    def _load_fit_images(self, X) -> np.ndarray:
        images = load_images(X, size=self.image_size)
        self.n_channels_ = int(images.shape[-1])
        self.image_shape_ = tuple(int(s) for s in images.shape[1:3])
        multiple = self._size_multiple()
        if multiple is not None:
            _check_divisible(self.image_shape_, *multiple)
        return images

    def _load_predict_images(self, X) -> np.ndarray:
        images = load_images(X, size=self.image_size, channels=self.n_channels_)
        if tuple(images.shape[1:3]) != self.image_shape_:
            raise ValueError(
                f"{type(self).__name__} was fitted on images of size {self.image_shape_} "
                f"(image_size=None keeps the size seen in fit) but got images of size "
                f"{tuple(images.shape[1:3])}; resize them or set image_size."
            )
        return images

    @staticmethod
    def _to_tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))

    def _fit_data(self, X):
        return self._to_tensor(self._load_fit_images(X))

    def _map_size(self):
        return self.image_shape_

    def _predict_data(self, X):
        return self._to_tensor(self._load_predict_images(X))

    def _augment(self, batch):
        if self.augment is None:
            return batch
        if callable(self.augment):
            out = self.augment(batch)
            if not isinstance(out, torch.Tensor) or out.shape != batch.shape:
                raise ValueError(
                    "An augment callable must return a tensor of the batch's shape "
                    f"{tuple(batch.shape)}."
                )
            return out
        return augment_images(batch, self.augment)


class FeatureMapInputMixin(_ImageTags):
    """Images in, CNN feature maps from ``featurizer`` (a DeepFeaturizer) as model input.

    ``featurizer=None`` uses ``DeepFeaturizer()``; a featurizer whose
    ``random_state`` is None gets the detector's. The maps are standardised
    per channel with the training mean and standard deviation (``map_mean_``,
    ``map_scale_``). ``featurizer_`` is the fitted clone; ``map_shape_`` the
    working resolution of the anomaly maps (the featurizer's ``image_size``).
    """

    _input_attrs_doc = """featurizer_ : DeepFeaturizer
        The fitted featurizer.
    feature_shape_ : tuple of int
        ``(C, h, w)`` of the feature maps.
    map_mean_, map_scale_ : ndarray of shape (C,)
        Per-channel standardisation of the feature maps.
    map_shape_ : tuple of int
        Working resolution of the error maps.
    """

    def _fit_data(self, X):
        if self.featurizer is None:
            from ..features import DeepFeaturizer

            featurizer = DeepFeaturizer()
        else:
            featurizer = clone(self.featurizer)
        params = featurizer.get_params()
        if "random_state" in params and params["random_state"] is None:
            # A randomly initialised backbone follows the detector's seed.
            featurizer.set_params(random_state=self.random_state)
        if getattr(featurizer, "crop_size", None) is not None:
            raise ValueError(
                "Anomaly maps must cover the whole image: use a featurizer with "
                f"crop_size=None (got crop_size={featurizer.crop_size!r})."
            )
        featurizer.fit(X)
        maps = np.asarray(featurizer.patch_features(X), dtype=np.float32)
        mean = maps.mean(axis=(0, 2, 3))
        scale = maps.std(axis=(0, 2, 3))
        scale[scale < 1e-6] = 1.0
        self.featurizer_ = featurizer
        self.map_mean_, self.map_scale_ = mean, scale
        self.feature_shape_ = tuple(int(s) for s in maps.shape[1:])
        size = getattr(featurizer, "image_size", None)
        if isinstance(size, Integral):
            self.map_shape_ = (int(size), int(size))
        elif isinstance(size, (tuple, list)) and len(size) == 2:
            self.map_shape_ = (int(size[0]), int(size[1]))
        else:
            self.map_shape_ = (8 * maps.shape[2], 8 * maps.shape[3])
        return self._standardise(maps)

    def _standardise(self, maps):
        maps = (maps - self.map_mean_[:, None, None]) / self.map_scale_[:, None, None]
        return torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))

    def _predict_data(self, X):
        maps = np.asarray(self.featurizer_.patch_features(X), dtype=np.float32)
        return self._standardise(maps)

    def _map_size(self):
        return self.map_shape_


class VectorInputMixin:
    """2-D feature arrays as input, standardised with the training mean and scale.

    Sets ``n_features_in_`` (and ``feature_names_in_``), ``mean_``, ``scale_``.
    Inference runs in float64 so that a sample's score does not depend on the
    other samples of its batch (float32 matrix products do, in the last bits).
    """

    _input_attrs_doc = """n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X had string column names.
    mean_, scale_ : ndarray of shape (n_features,)
        Standardisation of the input.
    """
    _inference_dtype = torch.float64

    def _fit_data(self, X):
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-12 * np.maximum(1.0, np.abs(self.mean_))] = 1.0
        self.scale_ = scale
        return self._standardise(X, np.float32)

    def _predict_data(self, X):
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._standardise(X, np.float64)

    def _standardise(self, X, dtype):
        return torch.from_numpy(np.ascontiguousarray((X - self.mean_) / self.scale_, dtype=dtype))
