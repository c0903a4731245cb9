"""A meta-estimator that fits on the normal samples only, so a search's refit is safe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, OutlierMixin, _fit_context, clone
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_consistent_length

from ._delegation import delegated_method
from ._split import _check_anomaly_labels

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence, Sized

    from numpy.typing import ArrayLike

__all__ = ["NormalOnlyFit"]


class NormalOnlyFit(MetaEstimatorMixin, OutlierMixin, BaseEstimator):
    """Fit a detector (or a pipeline ending in one) on the normal samples only.

    ``fit(X, y)`` drops the samples labelled anomalous (``y == 1``) and fits a
    clone of ``estimator`` on the rest; without ``y`` every sample is used.
    Everything else (``score_samples``, ``decision_function``, ``predict``,
    ``anomaly_map``, ...) is delegated to the fitted clone.

    Its purpose is hyper-parameter search. ``GridSearchCV``, after
    cross-validation, refits the best candidate on *all* of ``X``: wrapped in
    ``NormalOnlyFit``, that refit sees the normal samples only, so the default
    ``refit=True`` is safe and ``best_estimator_`` is ready to use. A search
    with :class:`NormalOnlyKFold` and ``refit=True`` around an estimator that
    is *not* wrapped raises an error instead of silently training on the
    anomalies.

    Parameters
    ----------
    estimator : estimator
        An unfitted detector, or a pipeline ending in one (anything with
        ``fit``); it is cloned in ``fit``. Its hyper-parameters are searched
        as ``estimator__<name>`` (e.g. ``estimator__oneclasssvm__nu``).

    Attributes
    ----------
    estimator_ : estimator
        The clone of ``estimator`` fitted on the normal samples.
    n_normal_ : int
        Number of samples it was fitted on.
    n_anomalies_dropped_ : int
        Number of samples labelled anomalous that were left out.

    See Also
    --------
    NormalOnlyKFold : Cross-validation whose training folds are normal-only.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.svm import OneClassSVM
    >>> from mvtec_sklearn.model_selection import NormalOnlyFit, NormalOnlyKFold
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(40, 2)), rng.normal(4, 1, size=(10, 2))])
    >>> y = np.r_[np.zeros(40, dtype=int), np.ones(10, dtype=int)]
    >>> search = GridSearchCV(
    ...     NormalOnlyFit(OneClassSVM()), {"estimator__gamma": [0.1, 1.0]},
    ...     scoring="image_auroc", cv=NormalOnlyKFold(2),
    ... ).fit(X, y)
    >>> search.best_estimator_.n_normal_, search.best_estimator_.n_anomalies_dropped_
    (40, 10)
    >>> bool(search.best_score_ > 0.9)
    True
    """

    _parameter_constraints: dict = {"estimator": [HasMethods(["fit"])]}

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self, X: ArrayLike | Sequence[str | os.PathLike[str]], y: ArrayLike | None = None,
        **fit_params: Any,
    ) -> "NormalOnlyFit":
        """Fit a clone of ``estimator`` on the samples with ``y == 0``.

        Parameters
        ----------
        X : array-like or sequence of paths, of length n_samples
            Samples, as ``estimator`` accepts them.
        y : array-like of shape (n_samples,) or None, default=None
            0 = normal, 1 = anomalous (or bool). ``None``: every sample is
            normal.
        **fit_params : dict
            Passed to ``estimator.fit``.

        Returns
        -------
        self : NormalOnlyFit
            The fitted meta-estimator.
        """
        if y is None:
            normal_X, n_dropped = X, 0
        else:
            labels = _check_anomaly_labels(y, type(self).__name__)
            check_consistent_length(X, labels)
            normal = np.flatnonzero(labels == 0)
            if normal.size == 0:
                raise ValueError("NormalOnlyFit needs normal samples (label 0) in y; got none.")
            normal_X, n_dropped = _safe_indexing(X, normal), int(labels.size - normal.size)
        self.estimator_ = clone(self.estimator).fit(normal_X, **fit_params)
        self.n_normal_ = len(cast("Sized", normal_X))
        self.n_anomalies_dropped_ = n_dropped
        return self

    score_samples = delegated_method(
        "score_samples", "``estimator_.score_samples(X)``: higher = more normal.",
        "ndarray of shape (n_samples,)",
    )
    decision_function = delegated_method(
        "decision_function", "``estimator_.decision_function(X)``: negative = anomaly.",
        "ndarray of shape (n_samples,)",
    )
    predict = delegated_method(
        "predict", "``estimator_.predict(X)``: +1 normal, -1 anomaly.",
        "ndarray of int, shape (n_samples,)",
    )
    anomaly_map = delegated_method(
        "anomaly_map", "``estimator_.anomaly_map(X)``: per-pixel anomaly scores.",
        "ndarray of shape (n_samples, H, W)", what="Images",
    )
    score_samples_and_anomaly_map = delegated_method(
        "score_samples_and_anomaly_map",
        "``estimator_.score_samples_and_anomaly_map(X)`` (one pass for both).",
        "scores : ndarray of shape (n_samples,)\nmaps : ndarray of shape (n_samples, H, W)",
        what="Images",
    )
