"""The one score convention (scikit-learn's), shared by every detector."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = ["AUTO_CONTAMINATION", "BaseDetector", "TrainingScoreDetector"]

#: Fraction of training samples flagged as anomalous when ``contamination="auto"``
#: (the same default as PyOD).
AUTO_CONTAMINATION = 0.1


class BaseDetector(OutlierMixin, BaseEstimator):
    """Base class of the package's outlier detectors.

    Subclasses implement ``fit`` (which must end with
    ``self._set_offset(training_score_samples)``) and ``score_samples``
    (higher = more normal). This class provides ``decision_function``
    (``score_samples - offset_``, negative = anomaly), ``predict`` (+1 normal,
    -1 anomaly) and ``fit_predict``.

    ``contamination`` is ``"auto"`` (:data:`AUTO_CONTAMINATION`, 10 %) or a
    float in (0, 0.5]: the fraction of training samples whose score falls below
    ``offset_``.
    """

    _parameter_constraints: dict = {
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
    }

    def _set_offset(self, train_score_samples) -> None:
        """Set ``offset_`` from the score_samples of the training data."""
        c = AUTO_CONTAMINATION if self.contamination == "auto" else float(self.contamination)
        self.offset_ = float(np.percentile(np.asarray(train_score_samples, dtype=np.float64), 100.0 * c))

    def decision_function(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike
    ) -> NDArray[np.float64]:
        """Shifted opposite of the anomaly score: negative means anomalous.

        Parameters
        ----------
        X : array-like
            Samples, as accepted by :meth:`score_samples`.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        check_is_fitted(self, "offset_")
        return self.score_samples(X) - self.offset_

    def predict(self, X: Sequence[str | os.PathLike[str]] | ArrayLike) -> NDArray[np.int_]:
        """Predict +1 for normal samples and -1 for anomalies.

        Parameters
        ----------
        X : array-like
            Samples, as accepted by :meth:`score_samples`.

        Returns
        -------
        ndarray of int, shape (n_samples,)
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels


class TrainingScoreDetector(BaseDetector):
    """Base class of the detectors that score their own training samples in ``fit``.

    Subclasses implement ``_fit(X)``: validate ``X``, fit, and return the
    ``score_samples`` of the training samples as the model scores them while
    fitting (for example leave-one-out, each sample's own match excluded).
    Those scores set ``offset_``, and :meth:`fit_predict` labels the training
    samples from them, so it flags a ``contamination`` fraction of them (up
    to ties), as :class:`~sklearn.neighbors.LocalOutlierFactor` does.
    """

    def _fit(self, X) -> NDArray[np.float64]:
        raise NotImplementedError

    def _fit_offset(self, X) -> NDArray[np.float64]:
        """Fit, set ``offset_`` from the training scores, and return them."""
        train_score_samples = self._fit(X)
        self._set_offset(train_score_samples)
        return train_score_samples

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: ArrayLike, y: object = None) -> "TrainingScoreDetector":
        """Fit on normal samples and set ``offset_`` from their training scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Normal training samples (at least 2).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        self._fit_offset(X)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_predict(self, X: ArrayLike, y: object = None) -> NDArray[np.int_]:
        """Fit and label the training samples from their training scores.

        A training sample is an anomaly (-1) when its training score is below
        ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples (at least 2).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        ndarray of int, shape (n_samples,)
            +1 for normal training samples, -1 for anomalous ones.
        """
        return np.where(self._fit_offset(X) < self.offset_, -1, 1)
