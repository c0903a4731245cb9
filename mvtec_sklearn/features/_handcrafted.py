"""Hand-crafted per-image statistics and the featurizer built on them.

:func:`compute_image_statistics` is the one implementation of these measures;
the exploration report (:mod:`mvtec_sklearn.analysis`) and
:class:`HandcraftedFeaturizer` both call it.
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from joblib import Parallel, delayed
from scipy import ndimage
from sklearn.utils._param_validation import Interval, validate_params

from mvtec_sklearn.datasets import load_images, read_image

from ._input import ImageTransformer, image_slice, n_images

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FEATURE_GROUPS",
    "HandcraftedFeaturizer",
    "compute_image_statistics",
    "image_statistic_names",
    "luminance",
]

FEATURE_GROUPS = ("brightness", "contrast", "channel_stats", "histogram", "edges", "lbp", "glcm")
_DEFAULT_GROUPS = ("brightness", "contrast", "channel_stats", "histogram", "edges", "lbp")
_LUMA = np.array([0.299, 0.587, 0.114])
_GLCM_LEVELS = 8
# LBP neighbours (dy, dx) in circular order, radius 1.
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _as_rgb255(image):
    """Any accepted image -> float64 (H, W, 3) on the 0-255 scale."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or arr.size == 0:
        raise ValueError(
            "Expected one image of shape (H, W) or (H, W, C) with C in 1, 3, 4; "
            f"got shape {arr.shape}."
        )
    if arr.dtype == np.uint8:
        out = arr.astype(np.float64)
    elif arr.dtype.kind in "iu":
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError("Integer images must be in 0-255.")
        out = arr.astype(np.float64)
    elif arr.dtype.kind == "f" or arr.dtype == bool:
        out = arr.astype(np.float64)
        if not np.all(np.isfinite(out)) or out.min() < 0 or out.max() > 1:
            raise ValueError("Float images must be finite and in [0, 1].")
        out *= 255.0
    else:
        raise ValueError(f"Unsupported image dtype {arr.dtype}.")
    out = out[..., :3]
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return out


_IMAGE = ["array-like", str, os.PathLike]
_GROUPS = [str, list, tuple]
_BINS = [Interval(Integral, 1, None, closed="left")]


@validate_params({"image": _IMAGE}, prefer_skip_nested_validation=True)
def luminance(image: ArrayLike | str | os.PathLike[str]) -> NDArray[np.float64]:
    """Perceived luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` on the 0-255 scale.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C), or a path
        uint8 in 0-255 or float in [0, 1]; grayscale is its own luminance,
        alpha is ignored.

    Returns
    -------
    Y : ndarray of float64, shape (H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.features import luminance
    >>> float(luminance(np.full((2, 2, 3), 255, np.uint8)).max())
    255.0
    """
    return _as_rgb255(image) @ _LUMA


def _check_groups(features):
    groups = (features,) if isinstance(features, str) else tuple(features)
    unknown = [g for g in groups if g not in FEATURE_GROUPS]
    if unknown or not groups:
        raise ValueError(f"Unknown feature group(s) {unknown}; choose from {list(FEATURE_GROUPS)}.")
    if len(set(groups)) != len(groups):
        raise ValueError(f"features contains duplicates: {groups!r}.")
    return groups


@validate_params({"features": _GROUPS, "bins": _BINS}, prefer_skip_nested_validation=True)
def image_statistic_names(
    features: str | Sequence[str] = _DEFAULT_GROUPS, bins: int = 16
) -> list[str]:
    """Names of the statistics :func:`compute_image_statistics` returns, in order.

    Parameters
    ----------
    features : str or sequence of str
        Groups, from ``FEATURE_GROUPS``.
    bins : int, default=16
        Histogram bins.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from mvtec_sklearn.features import image_statistic_names
    >>> image_statistic_names(("brightness", "edges"))
    ['brightness', 'edge_magnitude', 'edge_density']
    """
    names = []
    for group in _check_groups(features):
        if group in ("brightness", "contrast"):
            names.append(group)
        elif group == "channel_stats":
            names += [f"{s}_{c}" for c in "rgb" for s in ("mean", "std", "skew")]
        elif group == "histogram":
            names += [f"hist_{i:02d}" for i in range(bins)]
        elif group == "edges":
            names += ["edge_magnitude", "edge_density"]
        elif group == "lbp":
            names += [f"lbp_{k}" for k in range(9)] + ["lbp_nonuniform"]
        else:
            names += ["glcm_contrast", "glcm_homogeneity", "glcm_energy", "glcm_correlation"]
    return names


def _channel_stats(rgb):
    """Per-channel mean, population std and Fisher-Pearson skew m3 / m2**1.5 (0 if constant)."""
    pixels = rgb.reshape(-1, 3)
    mean = pixels.mean(axis=0)
    centred = pixels - mean
    squared = centred * centred
    m2 = squared.mean(axis=0)
    m3 = (squared * centred).mean(axis=0)
    skew = np.where(m2 > 1e-12, m3 / np.maximum(m2, 1e-12) ** 1.5, 0.0)
    return [v for c in range(3) for v in (mean[c], np.sqrt(m2[c]), skew[c])]


def _lbp_histogram(y):
    """Rotation-invariant uniform LBP (P=8, R=1) histogram of the interior pixels."""
    h, w = y.shape
    if h < 3 or w < 3:
        return np.zeros(10)
    centre = y[1:-1, 1:-1]
    bits = np.stack(
        [y[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] >= centre for dy, dx in _NEIGHBOURS]
    ).astype(np.int8)
    ones = bits.sum(axis=0)
    transitions = np.abs(bits - np.roll(bits, 1, axis=0)).sum(axis=0)
    code = np.where(transitions <= 2, ones, 9)
    return np.bincount(code.ravel(), minlength=10) / code.size


def _glcm_stats(y):
    """GLCM statistics at distance 1, averaged over the right and down neighbours."""
    q = np.minimum((y * (_GLCM_LEVELS / 256.0)).astype(np.int64), _GLCM_LEVELS - 1)
    pairs = [(q[:, :-1], q[:, 1:]), (q[:-1, :], q[1:, :])]
    glcm = np.zeros((_GLCM_LEVELS, _GLCM_LEVELS))
    for a, b in pairs:
        counts = np.bincount((a * _GLCM_LEVELS + b).ravel(), minlength=_GLCM_LEVELS**2)
        glcm += counts.reshape(_GLCM_LEVELS, _GLCM_LEVELS)
    glcm = glcm + glcm.T  # symmetric
    total = glcm.sum()
    if total == 0:
        return [0.0, 1.0, 1.0, 1.0]
    p = glcm / total
    i, j = np.indices(p.shape)
    mu = (i * p).sum()
    var = ((i - mu) ** 2 * p).sum()
    correlation = ((i - mu) * (j - mu) * p).sum() / var if var > 1e-12 else 1.0
    return [
        float(((i - j) ** 2 * p).sum()),
        float((p / (1.0 + np.abs(i - j))).sum()),
        float((p**2).sum()),
        float(correlation),
    ]


@validate_params(
    {
        "image": _IMAGE,
        "features": _GROUPS,
        "bins": _BINS,
        "edge_threshold": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def compute_image_statistics(
    image: ArrayLike | str | os.PathLike[str],
    features: str | Sequence[str] = _DEFAULT_GROUPS,
    bins: int = 16,
    edge_threshold: float = 10.0,
) -> dict[str, float]:
    """Hand-crafted statistics of one image.

    All measures use the 0-255 scale (a float image in [0, 1] is multiplied by
    255). A grayscale image counts as R = G = B; alpha is ignored.
    ``Y = 0.299 R + 0.587 G + 0.114 B`` is the perceived luminance (ITU-R
    BT.601).

    - ``brightness``: mean of Y.
    - ``contrast``: RMS contrast, the population standard deviation of Y.
    - ``channel_stats``: ``mean_c``, ``std_c`` (population) and ``skew_c``
      (Fisher-Pearson ``m3 / m2**1.5``, 0 for a constant channel) of each
      channel c in r, g, b.
    - ``histogram``: ``hist_00`` ... fraction of pixels whose Y falls in each
      of ``bins`` equal-width bins over [0, 256) (they sum to 1).
    - ``edges``: ``edge_magnitude``, the mean gradient magnitude of Y in grey
      levels per pixel (Sobel filters divided by 8, reflected borders, so a
      ramp rising by g per pixel gives g); ``edge_density``, the fraction of
      pixels whose magnitude exceeds ``edge_threshold``.
    - ``lbp``: histogram of rotation-invariant uniform local binary patterns
      (8 neighbours at radius 1, a neighbour >= the centre sets its bit;
      Ojala et al. 2002): ``lbp_k`` is the fraction of interior pixels with a
      uniform pattern of k set bits (k = 0..8), ``lbp_nonuniform`` the rest.
    - ``glcm``: grey-level co-occurrence statistics of Y quantised to 8
      levels, distance 1, right and down neighbours pooled, symmetric,
      normalised to probabilities p(i, j): ``glcm_contrast`` ``sum p (i-j)^2``,
      ``glcm_homogeneity`` ``sum p / (1 + |i-j|)``, ``glcm_energy`` sum p^2,
      ``glcm_correlation`` (Haralick; 1 for a constant image).

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C), or str / os.PathLike
        uint8 in 0-255 or float in [0, 1]; a path is decoded with
        :func:`mvtec_sklearn.datasets.read_image`.
    features : str or sequence of str, default=("brightness", "contrast", \
"channel_stats", "histogram", "edges", "lbp")
        Groups to compute, from ``FEATURE_GROUPS`` (which adds ``"glcm"``).
    bins : int, default=16
        Histogram bins.
    edge_threshold : float, default=10.0
        Gradient magnitude (grey levels per pixel) above which a pixel counts
        as an edge.

    Returns
    -------
    stats : dict of str -> float
        In the order of :func:`image_statistic_names`.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.features import compute_image_statistics
    >>> img = np.zeros((8, 8, 3), np.uint8); img[:, 4:] = 200
    >>> s = compute_image_statistics(img, features=("brightness", "contrast"))
    >>> s["brightness"], s["contrast"]
    (100.0, 100.0)
    """
    groups = _check_groups(features)
    rgb = _as_rgb255(image)
    y = rgb @ _LUMA
    values = []
    for group in groups:
        if group == "brightness":
            values.append(float(y.mean()))
        elif group == "contrast":
            values.append(float(y.std()))
        elif group == "channel_stats":
            values += _channel_stats(rgb)
        elif group == "histogram":
            counts = np.bincount(
                np.minimum((y * (bins / 256.0)).astype(np.int64), bins - 1).ravel(), minlength=bins
            )
            values += list(counts / y.size)
        elif group == "edges":
            gy = ndimage.sobel(y, axis=0, mode="reflect") / 8.0
            gx = ndimage.sobel(y, axis=1, mode="reflect") / 8.0
            magnitude = np.hypot(gx, gy)
            values += [float(magnitude.mean()), float(np.mean(magnitude > edge_threshold))]
        elif group == "lbp":
            values += list(_lbp_histogram(y))
        else:
            values += _glcm_stats(y)
    names = image_statistic_names(groups, bins)
    return dict(zip(names, map(float, values)))


class HandcraftedFeaturizer(ImageTransformer):
    """Hand-crafted image statistics as features, one row per image.

    Each image is measured by :func:`compute_image_statistics` (see there
    for the exact definition of every measure): brightness, RMS contrast,
    per-channel mean/std/skew, a luminance histogram, Sobel edge strength and
    density, a local-binary-pattern histogram and optionally grey-level
    co-occurrence (GLCM) statistics.

    Parameters
    ----------
    features : str or sequence of str, default=("brightness", "contrast", \
"channel_stats", "histogram", "edges", "lbp")
        Groups to compute: any of ``"brightness"``, ``"contrast"``,
        ``"channel_stats"``, ``"histogram"``, ``"edges"``, ``"lbp"``,
        ``"glcm"``.
    bins : int, default=16
        Histogram bins.
    image_size : int, (int, int) or None, default=None
        Resize every image first (bilinear, antialiased, as
        :func:`mvtec_sklearn.datasets.load_images`); ``None`` measures each
        image at its own size (uint8 inputs are then measured exactly).
    edge_threshold : float, default=10.0
        Gradient magnitude (grey levels per pixel) counted as an edge.
    n_jobs : int or None, default=None
        Images measured in parallel (joblib).

    Attributes
    ----------
    feature_names_ : list of str
        Output feature names.
    n_features_out_ : int
        Number of output features.

    See Also
    --------
    compute_image_statistics : The per-image measures.
    DeepFeaturizer : CNN features.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.features import HandcraftedFeaturizer
    >>> X = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    >>> feat = HandcraftedFeaturizer(features=("brightness", "edges")).fit(X)
    >>> feat.transform(X).shape
    (3, 3)
    >>> list(feat.get_feature_names_out())
    ['brightness', 'edge_magnitude', 'edge_density']
    """

    _parameter_constraints: dict = {
        "features": _GROUPS,
        "bins": _BINS,
        "image_size": [None, Interval(Integral, 1, None, closed="left"), tuple, list],
        "edge_threshold": [Interval(Real, 0, None, closed="left")],
        "n_jobs": [None, Integral],
    }

    def __init__(
        self,
        features: str | Sequence[str] = _DEFAULT_GROUPS,
        bins: int = 16,
        image_size: int | tuple[int, int] | None = None,
        edge_threshold: float = 10.0,
        n_jobs: int | None = None,
    ) -> None:
        self.features = features
        self.bins = bins
        self.image_size = image_size
        self.edge_threshold = edge_threshold
        self.n_jobs = n_jobs

    def _fit(self, paths, array):
        """Check the feature groups (no image is decoded)."""
        self._groups = _check_groups(self.features)
        self.feature_names_ = image_statistic_names(self._groups, self.bins)
        self.n_features_out_ = len(self.feature_names_)

    def _measure(self, image):
        if self.image_size is not None:
            image = load_images(image, size=self.image_size, channels=3)[0]
        elif isinstance(image, list):
            image = read_image(image[0])
        else:
            image = image[0]
        stats = compute_image_statistics(image, self._groups, self.bins, self.edge_threshold)
        return list(stats.values())

    def _transform(self, paths, array):
        """Measure every image: float64 (n, n_features_out)."""
        rows = Parallel(n_jobs=self.n_jobs)(
            delayed(self._measure)(image_slice(paths, array, i, i + 1))
            for i in range(n_images(paths, array))
        )
        return np.asarray(rows, dtype=np.float64).reshape(-1, self.n_features_out_)

    def _feature_names(self):
        return self.feature_names_
