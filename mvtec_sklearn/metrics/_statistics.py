"""How sure is a score: bootstrap confidence intervals, a paired test, per-defect-type AUROC.

Resampling is over *images* and stratified by the image label (normal and
anomalous images are resampled separately, each keeping its count), so every
resample has both classes and AUROC-type metrics stay defined. Pixel metrics
resample whole images (with their masks and maps), because pixels of one
image are not independent.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_consistent_length

from ._image import _check_labels_scores, image_auroc

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import ArrayLike

__all__ = ["ConfidenceInterval", "PairedTestResult", "bootstrap_ci", "paired_bootstrap_test",
           "per_defect_type_auroc"]


class ConfidenceInterval(NamedTuple):
    """A metric on the whole data and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float


class PairedTestResult(NamedTuple):
    """Paired comparison of two models on the same images (a minus b)."""

    difference: float
    low: float
    high: float
    pvalue: float


def _stratified_indices(labels, n_resamples, rng):
    """(n_resamples, n) indices drawn with replacement within each label."""
    out = np.empty((n_resamples, labels.shape[0]), dtype=np.intp)
    start = 0
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        out[:, start:start + members.size] = members[
            rng.randint(0, members.size, size=(n_resamples, members.size))]
        start += members.size
    return out


def _check_arrays(y_true, arrays):
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one label per image), got shape {labels.shape}.")
    labels = _check_labels_scores(labels, np.zeros(labels.shape[0]))[0]
    arrays = [np.asarray(a) for a in arrays]
    check_consistent_length(labels, *arrays)
    return labels, arrays


_BOOTSTRAP_PARAMS = {
    "metric": [callable],
    "y_true": ["array-like"],
    "n_resamples": [Interval(Integral, 1, None, closed="left")],
    "confidence_level": [Interval(Real, 0, 1, closed="neither")],
    "random_state": ["random_state"],
}


@validate_params({**_BOOTSTRAP_PARAMS}, prefer_skip_nested_validation=True)
def bootstrap_ci(
    metric: Callable[..., float],
    y_true: ArrayLike,
    *arrays: ArrayLike,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    random_state: int | np.random.RandomState | None = None,
) -> ConfidenceInterval:
    """Stratified percentile-bootstrap confidence interval of a metric.

    Images are resampled with replacement within each class of ``y_true``
    (so every resample keeps the numbers of normal and anomalous images) and
    ``metric(y_true[idx], *(a[idx] for a in arrays))`` is computed on each
    resample; the interval is the ``(1 - confidence_level) / 2`` and
    ``(1 + confidence_level) / 2`` quantiles of those values.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, *arrays) -> float``, e.g.
        :func:`~mvtec_sklearn.metrics.image_auroc`, or
        ``lambda y, masks, maps: pixel_auroc(masks, maps)`` for a pixel metric.
    y_true : array-like of shape (n_images,)
        Image labels, 0 = normal and 1 = anomalous; both must be present.
    *arrays : array-like, each with n_images rows
        The other arguments of ``metric`` (scores, masks, maps), resampled
        along their first axis together with ``y_true``.
    n_resamples : int, default=1000
        Bootstrap resamples.
    confidence_level : float in (0, 1), default=0.95
        Coverage of the interval.
    random_state : int, RandomState instance or None, default=None
        Seeds the resampling.

    Returns
    -------
    ConfidenceInterval
        ``(estimate, low, high)``; ``estimate`` is the metric on all images.

    See Also
    --------
    paired_bootstrap_test : Whether two models' metrics differ.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.metrics import bootstrap_ci, image_auroc
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(40), np.ones(40)]
    >>> scores = rng.normal(size=80) + y
    >>> ci = bootstrap_ci(image_auroc, y, scores, n_resamples=200, random_state=0)
    >>> bool(ci.low < ci.estimate < ci.high)
    True
    """
    labels, data = _check_arrays(y_true, arrays)
    rng = check_random_state(random_state)
    estimate = float(metric(labels, *data))
    values = np.array([
        metric(labels[idx], *(a[idx] for a in data))
        for idx in _stratified_indices(labels, n_resamples, rng)
    ], dtype=np.float64)
    alpha = (1.0 - confidence_level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return ConfidenceInterval(estimate, float(low), float(high))


@validate_params(
    {**_BOOTSTRAP_PARAMS, "a": ["array-like"], "b": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def paired_bootstrap_test(
    metric: Callable[..., float],
    y_true: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    *arrays: ArrayLike,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    random_state: int | np.random.RandomState | None = None,
) -> PairedTestResult:
    """Paired bootstrap test of ``metric(model a) - metric(model b)`` on the same images.

    Both models' outputs are resampled with the *same* indices (stratified by
    ``y_true`` as in :func:`bootstrap_ci`), so the test accounts for the
    images both models find hard. The two-sided p-value is twice the smaller
    share of resampled differences on either side of 0 (with the usual
    ``+1`` correction, so it is never 0), capped at 1.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, outputs, *arrays) -> float``, e.g.
        :func:`~mvtec_sklearn.metrics.image_auroc` with anomaly scores as
        ``a`` and ``b``, or ``lambda y, maps, masks: pixel_auroc(masks, maps)``
        with maps as ``a`` and ``b`` and the masks in ``arrays``.
    y_true : array-like of shape (n_images,)
        Image labels, 0 = normal and 1 = anomalous; both must be present.
    a, b : array-like with n_images rows
        The two models' outputs on the same images, in the same order.
    *arrays : array-like, each with n_images rows
        Further arguments of ``metric`` shared by both models (masks).
    n_resamples : int, default=1000
        Bootstrap resamples.
    confidence_level : float in (0, 1), default=0.95
        Coverage of the interval of the difference.
    random_state : int, RandomState instance or None, default=None
        Seeds the resampling.

    Returns
    -------
    PairedTestResult
        ``(difference, low, high, pvalue)``: the difference on all images, its
        bootstrap interval and the two-sided p-value of "no difference".

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.metrics import image_auroc, paired_bootstrap_test
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(50), np.ones(50)]
    >>> good, poor = rng.normal(size=100) + 2 * y, rng.normal(size=100) + 0.2 * y
    >>> result = paired_bootstrap_test(image_auroc, y, good, poor, n_resamples=300,
    ...                                random_state=0)
    >>> bool(result.difference > 0 and result.pvalue < 0.01)
    True
    """
    labels, (a_arr, b_arr, *rest) = _check_arrays(y_true, (a, b, *arrays))
    rng = check_random_state(random_state)

    def diff(idx):
        sub = [r[idx] for r in rest]
        return float(metric(labels[idx], a_arr[idx], *sub)) - float(metric(labels[idx], b_arr[idx], *sub))

    everything = np.arange(labels.shape[0])
    difference = diff(everything)
    values = np.array([diff(idx) for idx in _stratified_indices(labels, n_resamples, rng)])
    alpha = (1.0 - confidence_level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    side = min(np.count_nonzero(values <= 0), np.count_nonzero(values >= 0))
    pvalue = min(1.0, 2.0 * (side + 1) / (n_resamples + 1))
    return PairedTestResult(difference, float(low), float(high), float(pvalue))


@validate_params(
    {"y_true": ["array-like"], "anomaly_score": ["array-like"], "defect_type": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def per_defect_type_auroc(
    y_true: ArrayLike, anomaly_score: ArrayLike, defect_type: ArrayLike
) -> pd.Series:
    """Image AUROC of each defect type against all normal images.

    Parameters
    ----------
    y_true : array-like of shape (n_images,)
        0 = normal, 1 = anomalous; both must be present.
    anomaly_score : array-like of shape (n_images,)
        Higher = more anomalous.
    defect_type : array-like of shape (n_images,)
        The defect type of each image (the value of normal images is ignored,
        e.g. ``"good"``).

    Returns
    -------
    pandas.Series
        Indexed by the anomalous images' defect types (sorted), named
        ``"image_auroc"``: the AUROC of that type's images against every
        normal image.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import per_defect_type_auroc
    >>> per_defect_type_auroc([0, 0, 1, 1], [0.1, 0.5, 0.9, 0.3],
    ...                       ["good", "good", "crack", "hole"]).to_dict()
    {'crack': 1.0, 'hole': 0.5}
    """
    labels, scores = _check_labels_scores(y_true, anomaly_score)
    types = np.asarray(defect_type, dtype=object)
    check_consistent_length(labels, types)
    normal = labels == 0
    names = sorted({str(t) for t in types[~normal]})
    values = {}
    for name in names:
        keep = normal | ((labels == 1) & (types.astype(str) == name))
        values[name] = image_auroc(labels[keep], scores[keep])
    return pd.Series(values, name="image_auroc", dtype=np.float64).rename_axis("defect_type")
