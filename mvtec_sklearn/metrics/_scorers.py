"""Scorers that turn any detector's output into an anomaly score, for ``scoring=``.

A scorer is a callable ``scorer(estimator, X, y)`` (scikit-learn's public scorer
protocol). Ours compute ``anomaly_scores(estimator, X) = -estimator.score_samples(X)``,
which works for scikit-learn's detectors (``OneClassSVM``, ``IsolationForest``,
``LocalOutlierFactor(novelty=True)``), the package's detectors and pipelines
ending in any of them, and pass it to an image metric.

Scorer *names* for ``scoring="image_auroc"``
--------------------------------------------
scikit-learn 1.9 has no public way to add scorer names. A string ``scoring`` is
checked twice, against two private structures built when scikit-learn is
imported: the ``StrOptions`` parameter constraint of each estimator or function
that takes ``scoring`` and the name-to-scorer dictionary
``sklearn.metrics._scorer._SCORERS``. Importing :mod:`mvtec_sklearn.metrics`
therefore adds the names in :data:`SCORERS` (``"image_auroc"``, ``"aupr"``,
``"f1_max"``) to both, for the hyper-parameter searches (``GridSearchCV``,
``RandomizedSearchCV``, the halving searches), ``check_scoring`` and ``cross_validate``,
``cross_val_score``, ``learning_curve``, ``validation_curve`` and
``permutation_test_score``. It only adds names that scikit-learn does not
define, never replaces one. Where a future scikit-learn lacks these private
structures the names are not registered (a warning says so) and the public
route keeps working: ``scoring=get_scorer("image_auroc")``,
``scoring=make_anomaly_scorer("image_auroc")`` or the multi-metric
``scoring=SCORERS`` with ``refit="image_auroc"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
import warnings

import numpy as np

from ._image import aupr, f1_max, image_auroc

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "anomaly_scores",
    "make_anomaly_scorer",
    "get_scorer",
    "get_scorer_names",
    "SCORERS",
    "warn_if_inverted_scoring",
]


def anomaly_scores(
    estimator: Any, X: ArrayLike | Sequence[str | os.PathLike[str]]
) -> NDArray[np.float64]:
    """Anomaly scores (higher = more anomalous) of any fitted detector or pipeline.

    Parameters
    ----------
    estimator : fitted estimator
        Anything with ``score_samples`` where higher means more normal:
        scikit-learn's ``OneClassSVM``, ``IsolationForest``,
        ``LocalOutlierFactor(novelty=True)``, ``EllipticEnvelope``, the
        package's detectors, or a pipeline ending in one of them.
    X : array-like or sequence of paths
        Samples, as the estimator accepts them.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``-estimator.score_samples(X)`` as float64.

    Raises
    ------
    TypeError
        If the estimator has no ``score_samples`` (e.g.
        ``LocalOutlierFactor(novelty=False)``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from mvtec_sklearn.metrics import anomaly_scores
    >>> rng = np.random.default_rng(0)
    >>> forest = IsolationForest(random_state=0).fit(rng.normal(size=(100, 2)))
    >>> scores = anomaly_scores(forest, [[0.0, 0.0], [6.0, 6.0]])
    >>> bool(scores[1] > scores[0])
    True
    """
    if not hasattr(estimator, "score_samples"):
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        hint = ""
        if getattr(final, "novelty", True) is False:
            hint = " For LocalOutlierFactor, set novelty=True to score new samples."
        elif type(final).__module__.split(".")[0] == "pyod":
            hint = (
                f" {type(final).__name__} is a PyOD model (higher score = more abnormal, labels "
                f"0/1): wrap it as mvtec_sklearn.detectors.PyODDetector({type(final).__name__}(...)), "
                "which converts it to scikit-learn's convention."
            )
        raise TypeError(
            f"{type(estimator).__name__} has no score_samples method, so no anomaly score "
            f"can be computed from it.{hint}"
        )
    return -np.asarray(estimator.score_samples(X), dtype=np.float64).ravel()


def _f1_max_value(y_true, anomaly_score):
    return f1_max(y_true, anomaly_score)[0]


_METRICS = {"image_auroc": image_auroc, "aupr": aupr, "f1_max": _f1_max_value}


class _AnomalyScorer:
    """``scorer(estimator, X, y) = metric(y, anomaly_scores(estimator, X), **kwargs)``."""

    def __init__(self, metric, name, kwargs):
        self._metric = metric
        self._name = name
        self._kwargs = kwargs

    def __call__(self, estimator, X, y_true):
        return float(self._metric(y_true, anomaly_scores(estimator, X), **self._kwargs))

    def __repr__(self):
        kwargs = "".join(f", {k}={v!r}" for k, v in self._kwargs.items())
        return f"make_anomaly_scorer({self._name!r}{kwargs})"


def make_anomaly_scorer(
    metric: str | Callable[..., float], **kwargs: Any
) -> Callable[..., float]:
    """Make a ``scoring=`` callable from an image metric and detector anomaly scores.

    Parameters
    ----------
    metric : {"image_auroc", "aupr", "f1_max"} or callable
        A metric name (``"f1_max"`` scores the F1 value) or a function
        ``metric(y_true, anomaly_score, **kwargs) -> float``, higher = better.
    **kwargs
        Extra keyword arguments for ``metric``.

    Returns
    -------
    callable
        ``scorer(estimator, X, y)`` =
        ``metric(y, anomaly_scores(estimator, X), **kwargs)``, for
        ``GridSearchCV(scoring=...)``, ``cross_validate`` and friends.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.svm import OneClassSVM
    >>> from mvtec_sklearn.metrics import make_anomaly_scorer
    >>> from mvtec_sklearn.model_selection import NormalOnlyKFold
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(40, 2)), rng.normal(4, 1, size=(10, 2))])
    >>> y = np.r_[np.zeros(40, dtype=int), np.ones(10, dtype=int)]
    >>> search = GridSearchCV(
    ...     OneClassSVM(), {"gamma": [0.1, 1.0]},
    ...     scoring=make_anomaly_scorer("image_auroc"), cv=NormalOnlyKFold(2),
    ...     refit=False,  # a refit would train on the anomalies too
    ... ).fit(X, y)
    >>> bool(search.best_score_ > 0.9)
    True
    """
    if isinstance(metric, str):
        if metric not in _METRICS:
            raise ValueError(f"Unknown anomaly metric {metric!r}; choose one of {sorted(_METRICS)} or pass a callable.")
        return _AnomalyScorer(_METRICS[metric], metric, kwargs)
    if callable(metric):
        return _AnomalyScorer(metric, getattr(metric, "__name__", repr(metric)), kwargs)
    raise TypeError(f"metric must be a metric name or a callable, got {type(metric).__name__}.")


#: Scorer name -> scorer, usable as the multi-metric ``scoring=SCORERS``.
SCORERS = {name: make_anomaly_scorer(name) for name in _METRICS}


#: scikit-learn scorer names that rank ``decision_function`` (higher = more normal for a
#: detector) as the score of class 1 (anomalous), so they invert a detector's ranking,
#: mapped to the anomaly-aware name to use instead.
_INVERTED_SKLEARN_SCORERS = {
    "roc_auc": "image_auroc",
    "roc_auc_ovr": "image_auroc",
    "roc_auc_ovo": "image_auroc",
    "roc_auc_ovr_weighted": "image_auroc",
    "roc_auc_ovo_weighted": "image_auroc",
    "average_precision": "aupr",
}


def warn_if_inverted_scoring(scoring: Any, stacklevel: int = 2) -> None:
    """Warn when ``scoring`` names a scikit-learn scorer that inverts detector scores.

    Parameters
    ----------
    scoring : str, list, dict, callable or None
        A ``scoring=`` argument; names in lists and dict values are checked.
    stacklevel : int, default=2
        Passed to :func:`warnings.warn`.

    Examples
    --------
    >>> import warnings
    >>> from mvtec_sklearn.metrics import warn_if_inverted_scoring
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_inverted_scoring("roc_auc")
    >>> "use scoring='image_auroc'" in str(caught[0].message)
    True
    """
    if isinstance(scoring, str):
        names = [scoring]
    elif isinstance(scoring, dict):
        names = [v for v in scoring.values() if isinstance(v, str)]
    elif isinstance(scoring, (list, tuple, set)):
        names = [v for v in scoring if isinstance(v, str)]
    else:
        return
    for name in names:
        if name in _INVERTED_SKLEARN_SCORERS:
            warnings.warn(
                f"scoring={name!r} ranks decision_function (higher = more normal for a "
                "detector) as the score of class 1 (anomalous), so on a detector it gives "
                f"1 - the anomaly metric; use scoring={_INVERTED_SKLEARN_SCORERS[name]!r}, which "
                "scores -score_samples.",
                UserWarning,
                stacklevel=stacklevel + 1,
            )


def get_scorer_names() -> list[str]:
    """Names of the package's anomaly scorers.

    Returns
    -------
    list of str
        ``["aupr", "f1_max", "image_auroc"]``.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import get_scorer_names
    >>> get_scorer_names()
    ['aupr', 'f1_max', 'image_auroc']
    """
    return sorted(SCORERS)


def get_scorer(scoring: str | Callable[..., float]) -> Callable[..., float]:
    """The anomaly scorer for a name, or scikit-learn's scorer otherwise.

    Parameters
    ----------
    scoring : str or callable
        One of :func:`get_scorer_names`, any scikit-learn scorer name, or a
        scorer callable (returned as is). ``"roc_auc"`` and
        ``"average_precision"`` warn: on a detector they rank
        ``decision_function`` (higher = more normal) as the anomalous class's
        score and give ``1 - image_auroc``; use ``"image_auroc"`` / ``"aupr"``.

    Returns
    -------
    callable
        ``scorer(estimator, X, y)``.

    Examples
    --------
    >>> from mvtec_sklearn.metrics import get_scorer
    >>> get_scorer("image_auroc")
    make_anomaly_scorer('image_auroc')
    """
    if isinstance(scoring, str) and scoring in SCORERS:
        return make_anomaly_scorer(scoring)
    warn_if_inverted_scoring(scoring, stacklevel=2)
    from sklearn.metrics import get_scorer as sklearn_get_scorer

    return sklearn_get_scorer(scoring)


def _register_sklearn_scorer_names():
    """Make ``scoring="image_auroc"`` (etc.) valid in scikit-learn; see the module docstring."""
    try:
        from sklearn import model_selection
        from sklearn.metrics import _scorer
        from sklearn.model_selection._search import BaseSearchCV
        from sklearn.utils._param_validation import StrOptions

        registry = _scorer._SCORERS
        constraint_dicts = [
            BaseSearchCV._parameter_constraints,
            _scorer.check_scoring._skl_parameter_constraints,
        ] + [
            getattr(model_selection, func)._skl_parameter_constraints
            for func in (
                "cross_validate",
                "cross_val_score",
                "learning_curve",
                "validation_curve",
                "permutation_test_score",
            )
        ]
    except (ImportError, AttributeError) as exc:
        warnings.warn(
            f"Could not register the anomaly scorer names with scikit-learn ({exc}); use "
            "scoring=mvtec_sklearn.metrics.get_scorer(name) instead of scoring=name.",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    new_names = [name for name in SCORERS if name not in registry]
    for name in new_names:
        registry[name] = SCORERS[name]
    for constraints in constraint_dicts:
        for constraint in constraints.get("scoring", []):
            if isinstance(constraint, StrOptions) and "roc_auc" in constraint.options:
                constraint.options.update(new_names)


_register_sklearn_scorer_names()
