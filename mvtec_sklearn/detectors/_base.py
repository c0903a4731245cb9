"""The one score convention (scikit-learn's), shared by every detector."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = ["BaseDetector", "AUTO_CONTAMINATION"]

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
