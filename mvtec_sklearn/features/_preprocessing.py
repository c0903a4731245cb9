"""Image loading / resizing to pixel features, and grayscale reduction."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Literal

import numpy as np
from sklearn.utils._param_validation import Interval, Options, StrOptions

from mvtec_sklearn.datasets import load_images
from mvtec_sklearn.utils import check_size_pair

from ._input import ImageTransformer, image_slice, image_source, n_images

__all__ = ["GrayscaleReducer", "ImageLoader"]

_CHUNK = 64  # images decoded at a time while measuring channel differences


def _first_image(paths, array):
    """The first image as float (1, H, W, C), decoding at most one file."""
    return load_images(image_slice(paths, array, 0, 1))


class _PixelTransformer(ImageTransformer):
    """An image transformer whose outputs are pixels: names ``"pixel_<y>_<x>_<c>"``.

    The names are meaningful with ``flatten=True``; ``image_shape_`` is the
    ``(H, W, C)`` of one output image.
    """

    def _feature_names(self):
        height, width, channels = self.image_shape_
        return [
            f"pixel_{y}_{x}_{c}"
            for y in range(height)
            for x in range(width)
            for c in range(channels)
        ]


class ImageLoader(_PixelTransformer):
    """Images (paths or arrays) -> float pixels in [0, 1], resized.

    The "raw pixels" featurizer: follow it with scikit-learn's
    :class:`~sklearn.decomposition.PCA` for the classic "pixels + PCA"
    baseline (PCA is not re-implemented here).

    Parameters
    ----------
    image_size : int, (int, int) or None, default=64
        Output ``(height, width)`` (bilinear, antialiased, as
        :func:`mvtec_sklearn.datasets.load_images`). ``None``: the size of
        the first image seen by ``fit``.
    channels : {"keep", 1, 3}, default="keep"
        ``1``: luminance; ``3``: RGB (grayscale repeated); ``"keep"``: the
        channel count of the first image seen by ``fit`` (1 or 3; alpha is
        dropped), applied to every later image so the output width is fixed.
    flatten : bool, default=True
        Return (n, H*W*C) rows (pixel order y, x, channel); ``False``
        returns (n, H, W, C) images, e.g. for :class:`GrayscaleReducer`.

    Attributes
    ----------
    image_shape_ : tuple of int
        ``(H, W, C)`` of one output image.
    n_features_out_ : int
        ``H * W * C``.

    See Also
    --------
    GrayscaleReducer : Drop colour when it carries no information.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.pipeline import make_pipeline
    >>> from mvtec_sklearn.features import ImageLoader
    >>> X = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    >>> ImageLoader(image_size=8).fit_transform(X).shape
    (5, 192)
    >>> make_pipeline(ImageLoader(image_size=8), PCA(n_components=2)).fit_transform(X).shape
    (5, 2)
    """

    _parameter_constraints: dict = {
        "image_size": [None, Interval(Integral, 1, None, closed="left"), tuple, list],
        "channels": [StrOptions({"keep"}), Options(Integral, {1, 3})],
        "flatten": ["boolean"],
    }

    def __init__(
        self,
        image_size: int | tuple[int, int] | None = 64,
        channels: int | Literal["keep"] = "keep",
        flatten: bool = True,
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.flatten = flatten

    def _fit(self, paths, array):
        """Fix the output shape from the parameters (and the first image)."""
        first = _first_image(paths, array)
        size = (
            first.shape[1:3]
            if self.image_size is None
            else check_size_pair(self.image_size, "image_size")
        )
        channels = (1 if first.shape[-1] == 1 else 3) if self.channels == "keep" else self.channels
        self.image_shape_ = (int(size[0]), int(size[1]), int(channels))
        self.n_features_out_ = int(np.prod(self.image_shape_))

    def _transform(self, paths, array):
        """Load, convert and resize the images: float32 (n, H*W*C) or (n, H, W, C)."""
        images = load_images(
            image_source(paths, array), size=self.image_shape_[:2], channels=self.image_shape_[2]
        )
        return images.reshape(len(images), -1) if self.flatten else images


class GrayscaleReducer(_PixelTransformer):
    """Reduce RGB images to one luminance channel when colour carries nothing.

    Input: images as paths or an (n, H, W[, C]) array (e.g. the output of
    ``ImageLoader(flatten=False)``); output: float images in [0, 1] with 1
    channel (``Y = 0.299 R + 0.587 G + 0.114 B``) or 3 (RGB, grayscale
    repeated), flattened to rows when ``flatten=True``. Typical pipeline::

        make_pipeline(ImageLoader(image_size=64, flatten=False),
                      GrayscaleReducer(flatten=True), PCA(n_components=50))

    Parameters
    ----------
    mode : {"auto", "always", "never"}, default="auto"
        ``"always"`` reduces; ``"never"`` keeps 3 channels; ``"auto"`` reduces
        only when, over the images given to ``fit``, no pixel's channels differ
        by more than ``tol`` (max over pixels of ``max(R,G,B) - min(R,G,B)``),
        as for MVTec's grid, screw and zipper, or gray images saved as RGB.
    tol : float, default=0.01
        Largest channel difference (on the [0, 1] scale) still counted as
        gray in ``"auto"`` mode (0.01 is about 2.5 grey levels, which
        tolerates JPEG chroma noise).
    flatten : bool, default=False
        Return (n, H*W*C) rows instead of (n, H, W, C) images.

    Attributes
    ----------
    channel_difference_ : float
        Largest channel difference seen by ``fit`` (0 for 1-channel input).
    reduce_ : bool
        Whether ``transform`` outputs one channel.
    image_shape_ : tuple of int
        ``(H, W, C)`` of one output image (from the first fitted image).

    See Also
    --------
    ImageLoader : Resize images first.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.features import GrayscaleReducer
    >>> gray_as_rgb = np.repeat(np.random.default_rng(0).random((4, 8, 8, 1)), 3, axis=-1)
    >>> reducer = GrayscaleReducer().fit(gray_as_rgb)
    >>> reducer.reduce_, reducer.transform(gray_as_rgb).shape
    (True, (4, 8, 8, 1))
    """

    _parameter_constraints: dict = {
        "mode": [StrOptions({"auto", "always", "never"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "flatten": ["boolean"],
    }

    def __init__(
        self,
        mode: Literal["auto", "always", "never"] = "auto",
        tol: float = 0.01,
        flatten: bool = False,
    ) -> None:
        self.mode = mode
        self.tol = tol
        self.flatten = flatten

    def _fit(self, paths, array):
        """Measure how much the channels differ and decide whether to reduce."""
        n = n_images(paths, array)
        difference = 0.0
        for start in range(0, n, _CHUNK):
            images = load_images(image_slice(paths, array, start, start + _CHUNK), channels="keep")
            if images.shape[-1] == 3:
                spread = images.max(axis=-1) - images.min(axis=-1)
                difference = max(difference, float(spread.max()))
        self.channel_difference_ = difference
        self.reduce_ = self.mode == "always" or (self.mode == "auto" and difference <= self.tol)
        height, width = _first_image(paths, array).shape[1:3]
        self.image_shape_ = (int(height), int(width), 1 if self.reduce_ else 3)

    def _transform(self, paths, array):
        """Convert images of the fitted size to 1 or 3 channels: float32, (n, H, W, C) or rows."""
        images = load_images(image_source(paths, array), channels=self.image_shape_[2])
        if images.shape[1:] != self.image_shape_:
            raise ValueError(
                f"Images have shape {images.shape[1:3]} but the reducer was fitted on "
                f"{self.image_shape_[:2]}; resize them first (e.g. with ImageLoader)."
            )
        return images.reshape(len(images), -1) if self.flatten else images
