"""What PatchCore and PaDiM share: image and feature batching, the featurizer, the API."""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import TYPE_CHECKING

import torch
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from mvtec_sklearn.datasets import check_image_input, load_images, read_image_size
from mvtec_sklearn.utils import ImageEstimatorMixin, check_size_pair, progress

from ._base import BaseDetector
from ._maps import LocalizationMixin

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["BasePatchDetector"]


def _native_sizes(source):
    """The ``(H, W)`` of every image: array shape, or file headers (nothing decoded)."""
    if isinstance(source, list):
        return [read_image_size(p) for p in source]
    return [tuple(int(s) for s in source.shape[1:3])] * len(source)


def _image_batches(source, batch_size, size, verbose=False, desc=None):
    """Yield ``(start, images, input_size)``: float32 (b, *size, 3) batches.

    Images are resized to ``size`` (the network's input) while they are
    decoded, one at a time, so memory follows ``size`` and ``batch_size``, not
    the images' native resolution; ``input_size`` is that native ``(H, W)``,
    the same for every image.
    """
    n = len(source)
    shape = None
    starts = range(0, n, batch_size)
    for start in progress(starts, verbose=verbose, total=len(starts), desc=desc):
        part = source[start:start + batch_size]
        for input_size in _native_sizes(part):
            if shape is None:
                shape = input_size
            elif input_size != shape:
                raise ValueError(
                    f"All images must have the same size; found {shape} and {input_size}."
                )
        yield start, load_images(part, size=size, channels=3), shape


#: Parameters a patch detector hands on to its DeepFeaturizer as they are.
_FEATURIZER_PARAMS = ("backbone", "weights", "patch_size", "image_size", "device", "batch_size")


def _make_featurizer(est, random_state):
    """The unfitted DeepFeaturizer of patch detector ``est``, seeded with ``random_state``."""
    from mvtec_sklearn.features import DeepFeaturizer

    return DeepFeaturizer(
        **{name: getattr(est, name) for name in _FEATURIZER_PARAMS},
        layers=None if est.layers is None else tuple(est.layers),
        random_state=random_state,
        verbose=False,
    )


def _image_source(X):
    """Validated images as a list of paths or an array (nothing decoded yet)."""
    paths, array = check_image_input(X)
    return paths if paths is not None else array


class BasePatchDetector(ImageEstimatorMixin, LocalizationMixin, BaseDetector):
    """Base of the patch detectors: the batch loops over images and patch features.

    Subclasses implement ``_fit(source, rng)`` (reading the training
    features from :meth:`_feature_batches`; see :meth:`fit`),
    ``_scoring_state()`` (whatever scoring needs once, on the device) and
    ``_batch_scores(feats, input_size, with_maps, state)``: the image anomaly
    scores (b,) of a batch of patch features (b, C, h, w) and, when
    ``with_maps``, its anomaly maps (b, H, W) at the input resolution, as
    tensors. ``_fitted_attr`` names the attribute that ``fit`` sets last,
    ``_progress_name`` the progress bars' label. Attributes named in
    ``_transient_attrs`` (device caches) are dropped when pickling. The
    parameters that the detectors hand on to their featurizer are validated
    here.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "backbone": "no_validation",
        "weights": [None, str, os.PathLike],
        "layers": [None, str, list, tuple],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "smoothing_sigma": [Interval(Real, 0, None, closed="left")],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "device": "no_validation",
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }
    _transient_attrs: tuple = ()
    _fitted_attr: str
    _progress_name: str

    def _fit(self, source, rng) -> np.ndarray:
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike, y: None = None
    ) -> "BasePatchDetector":
        """Fit the model of normal patches (see the class description) on training images.

        Sets the network's input size from ``image_size`` and hands the
        validated images (nothing decoded yet) and a RandomState of
        ``random_state`` to the detector's ``_fit(source, rng)``, which
        returns the training images' anomaly scores; those set ``offset_``.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Normal images (uint8 0-255 or float in [0, 1]).
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted detector.
        """
        self._network_size = check_size_pair(self.image_size, "image_size")
        train_scores = self._fit(_image_source(X), check_random_state(self.random_state))
        self._set_offset(-train_scores)
        return self

    def _feature_batches(self, source, featurizer=None, seed=None):
        """Yield ``(start, featurizer, feats, input_size)``, ``batch_size`` images at a time.

        Parameters
        ----------
        source : list of paths or ndarray
            Images (:func:`_image_source`).
        featurizer : DeepFeaturizer or None, default=None
            The fitted featurizer; None (in ``fit``) makes one seeded with
            ``seed`` and fits it on the first batch.
        seed : int or None, default=None
            Seed of a featurizer made here.

        Yields
        ------
        start : int
            Position of the batch's first image.
        featurizer : DeepFeaturizer
            The fitted featurizer.
        feats : tensor (b, C, h, w)
            The batch's patch features, on the featurizer's device.
        input_size : (int, int)
            The images' native size.
        """
        desc = self._progress_name if featurizer is not None else f"{self._progress_name} fit"
        for start, images, input_size in _image_batches(source, self.batch_size,
                                                        self._network_size, self.verbose, desc):
            if featurizer is None:
                featurizer = _make_featurizer(self, seed).fit(images)
            yield start, featurizer, featurizer.patch_features(images, return_tensor=True), input_size

    def _scoring_state(self):
        raise NotImplementedError

    def _batch_scores(self, feats, input_size, with_maps, state):
        raise NotImplementedError

    def _scores_and_maps(self, X, with_scores=True, with_maps=True):
        """Image anomaly scores (n,) and, when ``with_maps``, maps (n, H, W) as numpy.

        The scores are computed whatever ``with_scores`` says: they cost
        nothing more than the maps.
        """
        check_is_fitted(self, self._fitted_attr)
        source = _image_source(X)
        state = self._scoring_state()
        scores, maps = [], []
        with torch.inference_mode():
            for _, _, feats, input_size in self._feature_batches(source, self.featurizer_):
                score, batch_maps = self._batch_scores(feats, input_size, with_maps, state)
                scores.append(score.cpu())
                if with_maps:
                    maps.append(batch_maps.cpu())
        return torch.cat(scores).double().numpy(), (torch.cat(maps).numpy() if with_maps else None)

    def score_samples(self, X: Sequence[str | os.PathLike[str]] | ArrayLike) -> NDArray[np.float64]:
        """Opposite of the image anomaly score: higher is more normal.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images.

        Returns
        -------
        ndarray of shape (n,)
        """
        return -self._scores_and_maps(X, with_scores=True, with_maps=False)[0]

    def __getstate__(self):
        state = super().__getstate__()
        for name in self._transient_attrs:
            state.pop(name, None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
