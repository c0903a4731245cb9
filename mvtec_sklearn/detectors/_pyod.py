"""Any PyOD model as a scikit-learn outlier detector with the package's score convention."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseDetector, TrainingScoreDetector

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["PyODDetector"]


class PyODDetector(TrainingScoreDetector):
    """Adapter from a PyOD detector to scikit-learn's outlier-detector convention.

    PyOD scores are *anomaly* scores (higher = more abnormal) and its labels are
    0/1; this adapter turns them into the package's (and scikit-learn's)
    convention: ``score_samples = -detector.decision_function(X)`` (higher =
    more normal), ``decision_function = score_samples - offset_`` and
    ``predict`` in {+1, -1}.

    ``offset_`` comes from the wrapped model's own training scores
    (``decision_scores_``), as PyOD's ``threshold_`` does; for the
    neighbour-based models (``KNN``, ``LOF``) these exclude each sample's own
    match, so the threshold is calibrated for unseen samples. The ``contamination``
    of the wrapped model is not used: this adapter's ``contamination`` sets the
    threshold.

    PyOD's own fitted attributes are there too, with PyOD's meaning:
    ``decision_scores_`` (training anomaly scores), ``threshold_`` (anomaly
    scores above it are outliers; ``threshold_ == -offset_``) and ``labels_``
    (0 = inlier, 1 = outlier, for the training samples). :meth:`fit_predict`
    returns ``labels_`` in scikit-learn's coding (+1 / -1), so it flags a
    ``contamination`` fraction of the training samples even for models whose
    training scores are leave-one-out.

    PyOD's deep models (``AutoEncoder``, ``VAE``, ``DeepSVDD``, ...) drop the
    last incomplete batch and train on nothing when ``batch_size`` exceeds the
    number of samples (a small cross-validation fold); the clone then gets
    ``batch_size = n_samples`` instead, with a warning.

    Parameters
    ----------
    detector : PyOD detector or None, default=None
        An unfitted PyOD model (anything with ``fit`` and ``decision_function``
        returning higher-is-more-abnormal scores). It is cloned in ``fit``.
        ``None`` means ``pyod.models.knn.KNN()``.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Fraction of training scores below ``offset_``; "auto" is 10 %.

    Attributes
    ----------
    detector_ : PyOD detector
        The fitted clone of ``detector``.
    offset_ : float
        Threshold on ``score_samples``.
    decision_scores_ : ndarray of shape (n_samples,)
        PyOD's training anomaly scores (higher = more abnormal).
    threshold_ : float
        PyOD's threshold on anomaly scores, ``-offset_``.
    labels_ : ndarray of int, shape (n_samples,)
        PyOD's training labels: 1 where ``decision_scores_ > threshold_``, else 0.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X had string column names.

    See Also
    --------
    KNNDetector : A faster exact k-NN detector (torch, CPU or GPU).

    Examples
    --------
    >>> import numpy as np
    >>> from pyod.models.iforest import IForest
    >>> from mvtec_sklearn.detectors import PyODDetector
    >>> rng = np.random.default_rng(0)
    >>> X_train = rng.normal(size=(200, 3))
    >>> det = PyODDetector(IForest(random_state=0)).fit(X_train)
    >>> det.predict([[0.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
    array([ 1, -1])
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "detector": [HasMethods(["fit", "decision_function"]), None],
    }

    def __init__(
        self, detector: Any = None, *, contamination: float | Literal["auto"] = "auto"
    ) -> None:
        self.detector = detector
        self.contamination = contamination

    def _fit(self, X):
        """Fit a clone of the PyOD model; return the opposite of its training scores."""
        X = cast(  # sklearn is untyped; validate_data returns an ndarray
            "np.ndarray", validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        )
        if self.detector is None:
            from pyod.models.knn import KNN

            detector = KNN()
        else:
            detector = clone(self.detector)
        batch_size = detector.get_params(deep=False).get("batch_size")
        if isinstance(batch_size, Integral) and batch_size > X.shape[0]:
            warnings.warn(
                f"batch_size={batch_size} of {type(detector).__name__} exceeds the "
                f"{X.shape[0]} training samples; batch_size={X.shape[0]} is used.",
                UserWarning,
                stacklevel=5,
            )
            detector.set_params(batch_size=X.shape[0])
        detector.fit(X)
        self.detector_ = detector
        train_scores = getattr(detector, "decision_scores_", None)
        if train_scores is None:
            train_scores = detector.decision_function(X)
        self.decision_scores_ = np.asarray(train_scores, dtype=np.float64).ravel()
        return -self.decision_scores_

    def _set_offset(self, train_score_samples) -> None:
        """Set ``offset_`` and PyOD's ``threshold_`` and ``labels_``."""
        super()._set_offset(train_score_samples)
        self.threshold_ = -self.offset_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Opposite of the PyOD anomaly score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query samples.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``-detector_.decision_function(X)``: higher = more normal.
        """
        check_is_fitted(self, "detector_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return -np.asarray(self.detector_.decision_function(X), dtype=np.float64).ravel()
