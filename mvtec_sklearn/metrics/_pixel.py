"""Pixel-level localisation metrics: pixel AUROC and AUPRO (MVTec AD protocol).

Both are exact and need no threshold loop: the defect-free pixels' scores are
sorted once and the defect pixels are located among them with binary search,
in chunks, so memory stays at about one copy of the normal pixels' scores.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["aupro", "pixel_auroc"]

_CHUNK = 1 << 20


#: The parameters every pixel metric takes.
_MASKS_AND_MAPS = {
    "masks": ["array-like"],
    "maps": ["array-like"],
    "downsample": [None, Interval(Integral, 1, None, closed="left")],
}


def _check_masks_maps(
    masks: Any, maps: Any, downsample: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return bool masks and float maps of shape (n, H, W)."""
    masks = np.asarray(masks)
    maps = np.asarray(maps)
    if masks.ndim == 2:
        masks = masks[None]
    if maps.ndim == 2:
        maps = maps[None]
    if masks.ndim != 3 or maps.ndim != 3:
        raise ValueError(
            "masks and maps must be arrays of shape (n, H, W) (or one (H, W) image); got "
            f"shapes {np.shape(masks)} and {np.shape(maps)}."
        )
    if masks.shape != maps.shape:
        raise ValueError(
            f"masks and maps must have the same shape; got {masks.shape} and {maps.shape}."
        )
    if maps.dtype.kind not in "biuf":
        raise ValueError(f"maps must be numeric, got dtype {maps.dtype}.")
    if maps.dtype.kind != "f":
        maps = maps.astype(np.float64)
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps contain NaN or infinite values.")
    if masks.dtype != bool:
        if masks.dtype.kind not in "biuf":
            raise ValueError(f"masks must be boolean (or 0/1), got dtype {masks.dtype}.")
        masks = masks != 0
    if downsample is not None and downsample > 1:
        masks = masks[:, ::downsample, ::downsample]
        maps = maps[:, ::downsample, ::downsample]
    return masks, maps


def _split(masks, maps):
    """Scores of defect and of defect-free pixels (checked non-empty), the latter sorted."""
    n_pos = int(np.count_nonzero(masks))
    if n_pos == 0:
        raise ValueError("masks contain no defect pixels; the metric is undefined.")
    if n_pos == masks.size:
        raise ValueError("masks contain no defect-free pixels; the metric is undefined.")
    negatives = maps[~masks]
    negatives.sort()
    return maps[masks], negatives


@validate_params(_MASKS_AND_MAPS, prefer_skip_nested_validation=True)
def pixel_auroc(masks: ArrayLike, maps: ArrayLike, *, downsample: int | None = None) -> float:
    """Area under the ROC curve of all pixels' anomaly scores.

    Equal to :func:`sklearn.metrics.roc_auc_score` on the flattened masks and
    maps (ties count one half), computed as the Mann-Whitney statistic: the
    defect-free scores are sorted once and every defect pixel is located among
    them by binary search, in chunks. Memory is about one copy of the
    defect-free pixels' scores, never a float64 copy of everything.

    Parameters
    ----------
    masks : array-like of bool, shape (n, H, W) or (H, W)
        Ground truth, True on defect pixels.
    maps : array-like of float, same shape as ``masks``
        Anomaly maps (higher = more anomalous).
    downsample : int or None, default=None
        Evaluate on every ``downsample``-th row and column only (nearest
        subsampling of masks and maps alike).

    Returns
    -------
    float
        Pixel AUROC in [0, 1].

    Raises
    ------
    ValueError
        Shapes differ, non-finite scores, or the masks have no defect pixel
        or no defect-free pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.metrics import pixel_auroc
    >>> masks = np.zeros((1, 4, 4), bool); masks[0, :2, :2] = True
    >>> maps = np.zeros((1, 4, 4)); maps[0, :2, :3] = 1.0
    >>> round(pixel_auroc(masks, maps), 4)
    0.9167
    """
    masks, maps = _check_masks_maps(masks, maps, downsample)
    positives, negatives = _split(masks, maps)
    total = 0.0
    for start in range(0, positives.size, _CHUNK):
        chunk = positives[start:start + _CHUNK]
        below = np.searchsorted(negatives, chunk, side="left")
        not_above = np.searchsorted(negatives, chunk, side="right")
        total += float(below.sum(dtype=np.int64)) + 0.5 * float((not_above - below).sum())
    return float(total / (float(positives.size) * float(negatives.size)))


@validate_params(
    {**_MASKS_AND_MAPS, "fpr_limit": [Interval(Real, 0, 1, closed="right")]},
    prefer_skip_nested_validation=True,
)
def aupro(
    masks: ArrayLike,
    maps: ArrayLike,
    fpr_limit: float = 0.3,
    *,
    downsample: int | None = None,
) -> float:
    """Normalised area under the per-region-overlap (PRO) curve, MVTec AD protocol.

    Defect regions are the 8-connected components of each mask. At a
    threshold ``t``, PRO is the mean over all regions (of all images) of the
    fraction of the region's pixels scoring ``>= t``, and the false positive
    rate is the fraction of all defect-free pixels scoring ``>= t``. The PRO
    curve over every distinct threshold (starting at (0, 0)) is integrated
    with the trapezoidal rule up to ``fpr_limit`` (linearly interpolated at the
    limit) and divided by ``fpr_limit``, as in the official MVTec AD
    evaluation code.

    The computation is exact and has no threshold loop: the defect-free
    scores are sorted once; each defect pixel carries the weight
    ``1 / (size of its region)``, so cumulative sums of weights over the
    defect pixels sorted by score give PRO at every threshold, looked up by
    binary search in chunks.

    Parameters
    ----------
    masks : array-like of bool, shape (n, H, W) or (H, W)
        Ground truth, True on defect pixels.
    maps : array-like of float, same shape as ``masks``
        Anomaly maps (higher = more anomalous).
    fpr_limit : float in (0, 1], default=0.3
        Upper integration limit of the false positive rate.
    downsample : int or None, default=None
        Evaluate on every ``downsample``-th row and column only (nearest
        subsampling of masks and maps alike, before labelling regions).

    Returns
    -------
    float
        AUPRO in [0, 1].

    Raises
    ------
    ValueError
        Shapes differ, non-finite scores, ``fpr_limit`` out of (0, 1], or the
        masks have no defect pixel or no defect-free pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.metrics import aupro
    >>> masks = np.zeros((1, 8, 8), bool); masks[0, 1:3, 1:3] = True
    >>> perfect = masks.astype(float)
    >>> round(aupro(masks, perfect), 6)
    1.0
    """
    from scipy import ndimage

    masks, maps = _check_masks_maps(masks, maps, downsample)
    positives, negatives = _split(masks, maps)

    # weight 1 / |region| of every defect pixel, in the order of maps[masks]
    structure = np.ones((3, 3), dtype=int)
    weights: list[np.ndarray] = []
    n_regions = 0
    for mask in masks:
        if not mask.any():
            continue
        labels, n_comp = ndimage.label(mask, structure=structure)
        sizes = np.bincount(labels.ravel())
        weights.append(1.0 / sizes[labels[mask]])
        n_regions += n_comp

    order = np.argsort(positives, kind="stable")
    pos_sorted = positives[order]
    # tail[i] = PRO contributed by the defect pixels pos_sorted[i:]
    tail = np.zeros(pos_sorted.size + 1)
    tail[:-1] = np.cumsum(np.concatenate(weights)[order][::-1])[::-1] / n_regions
    del order, weights

    def pro_above(values, side):
        """PRO at thresholds just above (side='right') or at (side='left') ``values``."""
        return tail[np.searchsorted(pos_sorted, values, side=side)]

    n_neg = negatives.size
    desc = negatives[::-1]  # descending view
    limit_units = float(fpr_limit) * n_neg  # the limit, in defect-free pixels
    if limit_units >= n_neg:
        group_start, partial = n_neg, 0.0
    else:
        v = desc[int(np.floor(limit_units))]
        group_start = n_neg - int(np.searchsorted(negatives, v, side="right"))  # scores > v
        group_end = n_neg - int(np.searchsorted(negatives, v, side="left"))  # scores >= v
        pro_gt, pro_ge = pro_above(v, "right"), pro_above(v, "left")
        width = limit_units - group_start
        slope = (pro_ge - pro_gt) / (group_end - group_start)
        partial = width * (pro_gt + 0.5 * slope * width)

    area = 0.0
    for start in range(0, group_start, _CHUNK):
        values = desc[start:min(start + _CHUNK, group_start)]
        area += 0.5 * float(pro_above(values, "right").sum() + pro_above(values, "left").sum())
    return float((area + partial) / limit_units)
