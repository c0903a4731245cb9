"""ROC and precision-recall displays of any detector's anomaly scores (anomalies positive)."""

from __future__ import annotations

from typing import Any

from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

from mvtec_sklearn.metrics import anomaly_scores, aupr, image_auroc

__all__ = ["AnomalyPrecisionRecallDisplay", "AnomalyRocCurveDisplay"]


def _name(estimator):
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    return type(final).__name__


class _AnomalyCurveMixin:
    """``from_estimator`` and ``from_predictions`` of a curve display, anomalies positive.

    The display class sets ``_metric``, the package metric whose area it shows
    and whose clear errors it raises for bad labels or scores.
    """

    _metric: Any

    @classmethod
    def from_estimator(cls, estimator, X, y, *, name=None, **kwargs):
        """Plot the curve of a fitted detector's anomaly scores on ``X``.

        Parameters
        ----------
        estimator : fitted detector or pipeline
            Anything with ``score_samples`` (higher = more normal).
        X : array-like or sequence of paths
            Test samples, as the estimator accepts them.
        y : array-like of shape (n_samples,)
            0 = normal, 1 = anomalous (or bool).
        name : str or None, default=None
            Label of the curve; ``None`` is the (final) estimator's class name.
        **kwargs
            Passed to :meth:`from_predictions` (``ax``, ``plot_chance_level``, ...).

        Returns
        -------
        display
            An instance of the display class it is called on.
        """
        name = _name(estimator) if name is None else name
        return cls.from_predictions(y, anomaly_scores(estimator, X), name=name, **kwargs)

    @classmethod
    def from_predictions(cls, y_true, anomaly_score, **kwargs):
        """Plot the curve of anomaly scores.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            0 = normal, 1 = anomalous (or bool); both must be present.
        anomaly_score : array-like of shape (n_samples,)
            Higher = more anomalous, e.g. ``-detector.score_samples(X)``.
        **kwargs
            Passed to the scikit-learn display's ``from_predictions``
            (``name``, ``ax``, ``plot_chance_level``, ...); ``pos_label`` is
            always 1.

        Returns
        -------
        display
            An instance of the display class it is called on.
        """
        if "pos_label" in kwargs:
            raise TypeError(
                "pos_label is always 1 (anomalous) in an anomaly display; do not pass it."
            )
        cls._metric(y_true, anomaly_score)
        return super().from_predictions(y_true, anomaly_score, pos_label=1, **kwargs)


class AnomalyRocCurveDisplay(_AnomalyCurveMixin, RocCurveDisplay):
    """ROC curve of a detector's anomaly scores, with the anomalous class positive.

    scikit-learn's :class:`~sklearn.metrics.RocCurveDisplay` refuses outlier
    detectors, and its ``roc_auc`` reads ``decision_function`` (higher = more
    normal) as the score of class 1, which inverts the curve when ``y = 1``
    marks anomalies. This display takes the anomaly score
    ``-score_samples(X)`` (:func:`~mvtec_sklearn.metrics.anomaly_scores`) of
    any detector or pipeline ending in one, scikit-learn's included, so its
    area is :func:`~mvtec_sklearn.metrics.image_auroc`. It is a
    ``RocCurveDisplay``: ``plot``, ``ax_``, ``figure_``, ``line_`` and the
    keyword arguments of the parent's ``from_predictions`` work as there.
    Create it with :meth:`from_estimator` or :meth:`from_predictions`; the
    constructor is scikit-learn's.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import OneClassSVM
    >>> from mvtec_sklearn.plotting import AnomalyRocCurveDisplay
    >>> rng = np.random.default_rng(0)
    >>> detector = OneClassSVM(nu=0.1).fit(rng.normal(size=(50, 2)))
    >>> X_test = np.vstack([rng.normal(size=(20, 2)), rng.normal(4, 1, size=(5, 2))])
    >>> y_test = np.r_[np.zeros(20, dtype=int), np.ones(5, dtype=int)]
    >>> display = AnomalyRocCurveDisplay.from_estimator(detector, X_test, y_test)
    >>> bool(display.roc_auc > 0.9)
    True
    """

    _metric = staticmethod(image_auroc)


class AnomalyPrecisionRecallDisplay(_AnomalyCurveMixin, PrecisionRecallDisplay):
    """Precision-recall curve of a detector's anomaly scores, anomalies positive.

    The precision-recall counterpart of :class:`AnomalyRocCurveDisplay`; its
    average precision is :func:`~mvtec_sklearn.metrics.aupr`. Create it
    with :meth:`from_estimator` or :meth:`from_predictions`; the constructor
    is scikit-learn's.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from mvtec_sklearn.plotting import AnomalyPrecisionRecallDisplay
    >>> rng = np.random.default_rng(0)
    >>> forest = IsolationForest(random_state=0).fit(rng.normal(size=(50, 2)))
    >>> X_test = np.vstack([rng.normal(size=(20, 2)), rng.normal(5, 1, size=(5, 2))])
    >>> y_test = np.r_[np.zeros(20, dtype=int), np.ones(5, dtype=int)]
    >>> display = AnomalyPrecisionRecallDisplay.from_estimator(forest, X_test, y_test)
    >>> bool(display.average_precision > 0.8)
    True
    """

    _metric = staticmethod(aupr)
