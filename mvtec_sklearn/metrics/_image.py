"""Image-level metrics on anomaly scores (higher = more anomalous).

Every function takes ``y_true`` with 0 = normal (good) and 1 = anomalous
(``bool`` is accepted too) and an anomaly score such as
``-detector.score_samples(X)``. The values come from :mod:`sklearn.metrics`;
this module adds the validation that the anomaly-detection setting needs: both
classes must be present (a one-class ``y_true`` raises a ``ValueError`` instead
of giving NaN), scores must be finite, and scikit-learn's ``predict`` labels
(+1 normal, -1 anomaly) are refused because they would silently swap classes.
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Literal

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_consistent_length, column_or_1d

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["image_auroc", "aupr", "f1_max", "precision_recall_at", "select_threshold"]

#: The parameters every image metric takes.
_LABELS_AND_SCORES = {"y_true": ["array-like"], "anomaly_score": ["array-like"]}


def _check_labels_scores(y_true, anomaly_score, *, need_normal=True, need_anomalous=True):
    """Validate labels (0/1 or bool) and finite scores; return (int labels, float scores)."""
    y = column_or_1d(y_true, warn=True)
    scores = column_or_1d(anomaly_score, warn=True)
    check_consistent_length(y, scores)
    if y.shape[0] == 0:
        raise ValueError("y_true and anomaly_score are empty.")
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"y_true must hold 0 (normal) and 1 (anomalous) labels or booleans; got dtype {y.dtype}."
        )
    labels = np.unique(y)
    if not np.isin(labels, [0, 1]).all():
        hint = ""
        if -1 in labels:
            hint = (
                " These look like predict() outputs (+1 normal, -1 anomaly); convert them "
                "with y_true = (labels == -1).astype(int)."
            )
        raise ValueError(
            f"y_true must hold 0 (normal) and 1 (anomalous) labels or booleans; "
            f"got labels {labels.tolist()}.{hint}"
        )
    y = y.astype(np.int64)
    if need_normal and not (y == 0).any():
        raise ValueError(
            "y_true holds only anomalous samples (label 1); this metric needs normal "
            "samples (label 0) too."
        )
    if need_anomalous and not (y == 1).any():
        raise ValueError(
            "y_true holds only normal samples (label 0); this metric needs anomalous "
            "samples (label 1) too."
        )
    try:
        scores = scores.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"anomaly_score must be numeric: {exc}") from exc
    if not np.isfinite(scores).all():
        raise ValueError(
            f"anomaly_score holds {int((~np.isfinite(scores)).sum())} NaN or infinite value(s)."
        )
    return y, scores


@validate_params(_LABELS_AND_SCORES, prefer_skip_nested_validation=True)
def image_auroc(y_true: ArrayLike, anomaly_score: ArrayLike) -> float:
    """Area under the ROC curve of image-level anomaly scores.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0 = normal, 1 = anomalous (or bool). Both classes must be present.
    anomaly_score : array-like of shape (n_samples,)
        Higher = more anomalous, e.g. ``-detector.score_samples(X)``.

    Returns
    -------
    float
        :func:`sklearn.metrics.roc_auc_score`; 0.5 for constant scores.

    Raises
    ------
    ValueError
        If ``y_true`` holds a single class or labels other than 0/1, or the
        scores are not finite.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import image_auroc
    >>> image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, scores = _check_labels_scores(y_true, anomaly_score)
    return float(roc_auc_score(y, scores))


@validate_params(_LABELS_AND_SCORES, prefer_skip_nested_validation=True)
def aupr(y_true: ArrayLike, anomaly_score: ArrayLike) -> float:
    """Area under the precision-recall curve (average precision), anomalies positive.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0 = normal, 1 = anomalous (or bool). Both classes must be present.
    anomaly_score : array-like of shape (n_samples,)
        Higher = more anomalous.

    Returns
    -------
    float
        :func:`sklearn.metrics.average_precision_score`.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import aupr
    >>> round(aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y, scores = _check_labels_scores(y_true, anomaly_score)
    return float(average_precision_score(y, scores))


@validate_params(_LABELS_AND_SCORES, prefer_skip_nested_validation=True)
def f1_max(y_true: ArrayLike, anomaly_score: ArrayLike) -> tuple[float, float]:
    """Best F1 score over all thresholds, and the threshold that reaches it.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0 = normal, 1 = anomalous (or bool). Both classes must be present.
    anomaly_score : array-like of shape (n_samples,)
        Higher = more anomalous.

    Returns
    -------
    f1 : float
        The highest F1 (anomalies positive) over the thresholds of
        :func:`sklearn.metrics.precision_recall_curve`.
    threshold : float
        A sample is predicted anomalous when ``anomaly_score >= threshold``;
        the lowest such threshold when several reach the maximum.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import f1_max
    >>> f1, threshold = f1_max([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(f1, 4), threshold
    (0.8, 0.35)
    """
    y, scores = _check_labels_scores(y_true, anomaly_score)
    precision, recall, thresholds = precision_recall_curve(y, scores)
    # The last (precision=1, recall=0) point has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


@validate_params(
    {**_LABELS_AND_SCORES, "threshold": [Real]},
    prefer_skip_nested_validation=True,
)
def precision_recall_at(
    y_true: ArrayLike, anomaly_score: ArrayLike, threshold: float
) -> tuple[float, float]:
    """Precision and recall of the anomalous class at a fixed threshold.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0 = normal, 1 = anomalous (or bool). At least one anomalous sample.
    anomaly_score : array-like of shape (n_samples,)
        Higher = more anomalous.
    threshold : float
        Samples with ``anomaly_score >= threshold`` are predicted anomalous.

    Returns
    -------
    precision : float
        Fraction of flagged samples that are anomalous; 0.0 when nothing is
        flagged.
    recall : float
        Fraction of anomalous samples that are flagged.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import precision_recall_at
    >>> precision_recall_at([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.35)
    (0.6666666666666666, 1.0)
    """
    y, scores = _check_labels_scores(y_true, anomaly_score, need_normal=False)
    y_pred = (scores >= threshold).astype(np.int64)
    precision = precision_score(y, y_pred, labels=[0, 1], zero_division=0.0)
    recall = recall_score(y, y_pred, labels=[0, 1])
    return float(precision), float(recall)


@validate_params(
    {
        **_LABELS_AND_SCORES,
        "method": [StrOptions({"f1", "fpr"})],
        "target_fpr": [Interval(Real, 0, 1, closed="both")],
    },
    prefer_skip_nested_validation=True,
)
def select_threshold(
    y_true: ArrayLike, anomaly_score: ArrayLike,
    *,
    method: Literal["f1", "fpr"] = "f1",
    target_fpr: float = 0.05,
) -> float:
    """Choose an anomaly-score threshold from labelled validation data.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0 = normal, 1 = anomalous (or bool). Both classes must be present.
    anomaly_score : array-like of shape (n_samples,)
        Higher = more anomalous.
    method : {"f1", "fpr"}, default="f1"
        ``"f1"``: the threshold of :func:`f1_max`. ``"fpr"``: the lowest
        threshold whose false-positive rate on the normal samples is at most
        ``target_fpr`` (which gives the highest recall under that constraint).
    target_fpr : float in [0, 1], default=0.05
        Largest allowed false-positive rate, for ``method="fpr"``.

    Returns
    -------
    float
        Predict anomalous where ``anomaly_score >= threshold``. With
        ``method="fpr"`` it can be ``inf`` (flag nothing) when every finite
        threshold exceeds ``target_fpr``.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import select_threshold
    >>> y = [0, 0, 0, 0, 1, 1]
    >>> s = [0.1, 0.2, 0.3, 0.9, 0.5, 0.8]
    >>> select_threshold(y, s, method="f1")
    0.5
    >>> select_threshold(y, s, method="fpr", target_fpr=0.25)
    0.5
    """
    y, scores = _check_labels_scores(y_true, anomaly_score)
    if method == "f1":
        return f1_max(y, scores)[1]
    fpr, _, thresholds = roc_curve(y, scores, drop_intermediate=False)
    best = int(np.flatnonzero(fpr <= target_fpr)[-1])
    return float(thresholds[best])
