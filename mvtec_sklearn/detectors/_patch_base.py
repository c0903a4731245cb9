"""What PatchCore and PaDiM share: image batching, map post-processing, the featurizer, the API."""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import TYPE_CHECKING

from sklearn.utils._param_validation import Interval

from mvtec_sklearn.datasets import check_image_input, load_images, read_image_size
from mvtec_sklearn.utils import progress

from ._base import BaseDetector
from ._nn._functional import gaussian_blur

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


def _postprocess_maps(patch_maps, network_size, input_size, sigma):
    """Patch-grid maps -> smoothed maps at the network input size and at the image size.

    Parameters
    ----------
    patch_maps : tensor (n, h, w)
    network_size : (int, int)
        The size images are resized to before the network (``image_size``).
    input_size : (int, int)
        The size of the input images.
    sigma : float
        Standard deviation (pixels at ``network_size``) of the Gaussian
        smoothing; 0 disables it.

    Returns
    -------
    smooth : tensor (n, *network_size)
        Bilinear upsampling then Gaussian smoothing.
    at_input : tensor (n, *input_size)
        ``smooth`` resized bilinearly to the input resolution.
    """
    import torch.nn.functional as F

    x = F.interpolate(patch_maps[:, None].float(), size=tuple(network_size), mode="bilinear",
                      align_corners=False)[:, 0]
    smooth = gaussian_blur(x, sigma)
    if tuple(input_size) == tuple(network_size):
        return smooth, smooth
    at_input = F.interpolate(smooth[:, None], size=tuple(input_size), mode="bilinear",
                             align_corners=False)[:, 0]
    return smooth, at_input


def _network_size(image_size):
    if isinstance(image_size, Integral):
        return int(image_size), int(image_size)
    size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(
            f"image_size must be a positive int or a pair of ints, got {image_size!r}."
        )
    return size


def _make_featurizer(est, random_state):
    from mvtec_sklearn.features import DeepFeaturizer

    return DeepFeaturizer(
        backbone=est.backbone,
        weights=est.weights,
        layers=None if est.layers is None else tuple(est.layers),
        patch_size=est.patch_size,
        image_size=est.image_size,
        device=est.device,
        batch_size=est.batch_size,
        random_state=random_state,
        verbose=False,
    )


def _image_source(X):
    """Validated images as a list of paths or an array (nothing decoded yet)."""
    paths, array = check_image_input(X)
    return paths if paths is not None else array


_FEATURIZER_CONSTRAINTS = {
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


class BasePatchDetector(BaseDetector):
    """Base of the patch detectors: subclasses implement ``fit`` and ``_score``.

    ``_score(X, with_maps)`` returns the image anomaly scores (n,) and, when
    ``with_maps``, the anomaly maps (n, H, W) at the input resolution, both as
    numpy arrays. Attributes named in ``_transient_attrs`` (device caches) are
    dropped when pickling.
    """

    _transient_attrs: tuple = ()

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
        return -self._score(X, with_maps=False)[0]

    def anomaly_map(self, X: Sequence[str | os.PathLike[str]] | ArrayLike) -> NDArray[np.float32]:
        """Pixel anomaly maps at the input resolution (higher = more anomalous).

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images of one size.

        Returns
        -------
        ndarray of float32, shape (n, H, W)
        """
        return self._score(X, with_maps=True)[1]

    def score_samples_and_anomaly_map(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """``score_samples(X)`` and ``anomaly_map(X)`` from one pass over the images.

        Both come from the same patch distances, so asking for them
        together costs one backbone pass instead of two.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images of one size.

        Returns
        -------
        scores : ndarray of shape (n,)
            As :meth:`score_samples`: higher is more normal.
        maps : ndarray of float32, shape (n, H, W)
            As :meth:`anomaly_map`: higher is more anomalous.

        Examples
        --------
        >>> import numpy as np
        >>> from mvtec_sklearn.detectors import PaDiMDetector
        >>> X = np.random.default_rng(0).uniform(size=(6, 32, 32, 3)).astype(np.float32)
        >>> det = PaDiMDetector(weights=None, image_size=32, random_state=0).fit(X)
        >>> scores, maps = det.score_samples_and_anomaly_map(X[:2])
        >>> scores.shape, maps.shape
        ((2,), (2, 32, 32))
        """
        scores, maps = self._score(X, with_maps=True)
        return -scores, maps

    def __getstate__(self):
        state = super().__getstate__()
        for name in self._transient_attrs:
            state.pop(name, None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags
