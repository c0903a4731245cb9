"""A detector whose decision threshold is calibrated on held-out images."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, OutlierMixin, _fit_context, clone
from sklearn.utils import metadata_routing
from sklearn.metrics import roc_curve
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_array, check_is_fitted

from mvtec_sklearn.datasets import is_path_sequence, pseudo_defects
from mvtec_sklearn.metrics import f1_max

from ._delegation import delegated_method, estimator_has
from ._split import _check_anomaly_labels

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["CalibratedThresholdDetector"]


def _as_indexable(X):
    """Paths stay a list; anything else becomes a dense array (images or 2-D features)."""
    if is_path_sequence(X):
        return list(X)
    return check_array(X, accept_sparse=False, allow_nd=True, dtype=None,
                       ensure_all_finite=False)


#: Pseudo-defective copies made of each held-out normal image by ``pixel_method="synthetic"``
#: (one per recipe of :func:`mvtec_sklearn.datasets.pseudo_defects`).
N_PSEUDO_COPIES = 4


def _below(threshold, scores):
    """Midpoint between ``threshold`` and the largest score below it (``threshold`` if none)."""
    lower = scores[scores < threshold]
    return float(threshold) if lower.size == 0 else float((threshold + lower.max()) / 2.0)


def _image_threshold(method, target_fpr, y, scores):
    """Anomaly-score threshold; anomalous means ``score > threshold``."""
    normal = scores[y == 0]
    if method == "fpr":
        # at most target_fpr of the calibration normals lie strictly above
        return float(np.quantile(normal, 1.0 - target_fpr, method="higher"))
    if method == "f1":
        best = f1_max(y, scores)[1]  # flag scores >= best
    else:  # youden: maximise TPR - FPR
        fpr, tpr, thresholds = roc_curve(y, scores, drop_intermediate=False)
        best = thresholds[int(np.argmax(tpr - fpr))]
    return _below(best, scores)


class CalibratedThresholdDetector(MetaEstimatorMixin, OutlierMixin, BaseEstimator):
    """A detector or pipeline with a decision threshold calibrated on held-out images.

    ``fit`` holds out ``calibration_fraction`` of the normal images, fits a
    clone of ``estimator`` on the other normal images, and chooses the image
    threshold on the anomaly scores (``-score_samples``) of the held-out
    normal images and of every anomalous image:

    - ``method="fpr"``: the ``1 - target_fpr`` quantile of the held-out
      normal scores, so that about ``target_fpr`` of normal images are
      flagged. Unsupervised: every image of ``X`` is normal and ``y`` is
      ignored, as by every detector's ``fit``;
    - ``method="f1"``: the threshold of best F1 (needs labels ``y`` with
      anomalies);
    - ``method="youden"``: the threshold of largest ``TPR - FPR`` (Youden's
      J; needs anomalies too).

    With ``pixel_method`` set, a pixel threshold for :meth:`predict_mask` is
    chosen on the anomaly maps of the same images: ``"fpr"`` flags about
    ``pixel_target_fpr`` of the held-out normal images' pixels, ``"f1"``
    maximises the pixel F1 against ``masks``, and ``"synthetic"`` maximises
    the pixel F1 on pseudo-defective copies of the held-out normal images
    (:func:`mvtec_sklearn.datasets.pseudo_defects`: four copies per image,
    one per recipe: a Perlin-shaped region filled with a texture photo as in
    DRAEM, a CutPaste rectangle, a scratch and a stain), so it needs no
    defective images. The F1-optimal threshold outlines defect regions;
    a threshold from normal pixels alone (``"fpr"``) sits below the halo
    that the smoothing spreads around every defect. With
    ``refit=True`` the clone is then fitted again on every normal image.
    The thresholds are fitted attributes, so they travel with the pickled
    model (``joblib.dump``,
    :func:`mvtec_sklearn.deploy.save_model`).

    Parameters
    ----------
    estimator : estimator
        Any detector or pipeline with ``fit`` and ``score_samples`` (higher
        = more normal). Images in, maps out (``anomaly_map``) for
        ``pixel_method``.
    method : {"fpr", "f1", "youden"}, default="fpr"
        How the image threshold is chosen.
    target_fpr : float in [0, 1), default=0.05
        False-positive rate on held-out normal images, for ``method="fpr"``
        (the ``1 - target_fpr`` quantile of their scores).
    pixel_method : {"fpr", "f1", "synthetic"} or None, default=None
        How the pixel threshold is chosen; ``None``: no pixel threshold.
    pixel_target_fpr : float in [0, 1), default=0.01
        Share of normal pixels flagged, for ``pixel_method="fpr"``.
    calibration_fraction : float in (0, 1), default=0.2
        Share of the normal images held out for the calibration.
    refit : bool, default=True
        Refit the estimator on all normal images after calibrating.
    output : {"sign", "binary"}, default="sign"
        What :meth:`predict` returns: ``"sign"`` is scikit-learn's outlier
        convention (+1 normal, -1 anomaly), ``"binary"`` gives 0 normal and
        1 anomaly.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of the held-out images.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    threshold_ : float
        Image threshold on the anomaly score: an image is anomalous when
        ``-score_samples(X) > threshold_``.
    offset_ : float
        ``-threshold_``, so ``decision_function = score_samples - offset_``
        is negative exactly for anomalies (scikit-learn's convention).
    pixel_threshold_ : float or None
        Threshold on the anomaly maps used by :meth:`predict_mask`.
    calibration_indices_ : ndarray of int
        Rows of ``X`` the thresholds were chosen on.
    n_features_in_ : int
        Number of features, when the estimator takes 2-D input.

    See Also
    --------
    sklearn.model_selection.FixedThresholdClassifier : The same idea for classifiers.
    mvtec_sklearn.metrics.select_threshold : A threshold from labelled scores.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from mvtec_sklearn.model_selection import CalibratedThresholdDetector
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> det = CalibratedThresholdDetector(IsolationForest(random_state=0), target_fpr=0.1,
    ...                                   output="binary", random_state=0).fit(X)
    >>> det.predict(np.array([[0.0, 0.0, 0.0, 0.0], [8.0, 8.0, 8.0, 8.0]])).tolist()
    [0, 1]
    """

    # masks are a fit argument of this estimator, not metadata routed to others
    __metadata_request__fit = {"masks": metadata_routing.UNUSED}

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"])],
        "method": [StrOptions({"fpr", "f1", "youden"})],
        "target_fpr": [Interval(Real, 0, 1, closed="left")],
        "pixel_method": [None, StrOptions({"fpr", "f1", "synthetic"})],
        "pixel_target_fpr": [Interval(Real, 0, 1, closed="left")],
        "calibration_fraction": [Interval(Real, 0, 1, closed="neither")],
        "refit": ["boolean"],
        "output": [StrOptions({"sign", "binary"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator: Any,
        *,
        method: Literal["fpr", "f1", "youden"] = "fpr",
        target_fpr: float = 0.05,
        pixel_method: Literal["fpr", "f1", "synthetic"] | None = None,
        pixel_target_fpr: float = 0.01,
        calibration_fraction: float = 0.2,
        refit: bool = True,
        output: Literal["sign", "binary"] = "sign",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.target_fpr = target_fpr
        self.pixel_method = pixel_method
        self.pixel_target_fpr = pixel_target_fpr
        self.calibration_fraction = calibration_fraction
        self.refit = refit
        self.output = output
        self.random_state = random_state

    def _check_fit_inputs(self, n, y, masks):
        if self.method == "fpr":  # unsupervised: X is normal, y ignored (as by every detector)
            labels = np.zeros(n, dtype=np.int64)
        elif y is None:
            raise ValueError(
                f"method={self.method!r} needs labels y with anomalous images (1); pass y, "
                "or use method='fpr' to calibrate on normal images only."
            )
        else:
            labels = _check_anomaly_labels(y, type(self).__name__)
            if labels.shape[0] != n:
                raise ValueError(f"X has {n} samples but y has {labels.shape[0]}.")
            if not (labels == 1).any():
                raise ValueError(
                    f"method={self.method!r} needs anomalous images (y == 1) to calibrate on; "
                    "y holds none."
                )
        normal = np.flatnonzero(labels == 0)
        if normal.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 normal samples (one to fit, one to "
                f"calibrate on); got {normal.size} sample(s)."
            )
        if self.pixel_method is not None and not hasattr(self.estimator, "anomaly_map"):
            raise ValueError(
                f"pixel_method={self.pixel_method!r} needs an estimator with anomaly_map; "
                f"{type(self.estimator).__name__} has none."
            )
        if self.pixel_method == "f1":
            if masks is None:
                raise ValueError("pixel_method='f1' needs the ground-truth masks (fit(X, y, masks=...)).")
            masks = np.asarray(masks, dtype=bool)
            if masks.ndim != 3 or masks.shape[0] != n:
                raise ValueError(
                    f"masks must be a bool array of shape (n_images, H, W) with one mask per "
                    f"image of X ({n}); got shape {masks.shape}."
                )
        return labels, normal, masks

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: ArrayLike | None = None, masks: ArrayLike | None = None) -> "CalibratedThresholdDetector":
        """Fit the estimator on normal images and calibrate the threshold(s).

        Parameters
        ----------
        X : sequence of paths, image array, or array-like of shape (n_samples, n_features)
            Whatever ``estimator`` takes.
        y : array-like of shape (n_samples,) or None, default=None
            0 = normal, 1 = anomalous, for ``method="f1"`` or ``"youden"``
            (anomalous samples are never fitted on, only calibrated on).
            Ignored by ``method="fpr"``: every sample of ``X`` is normal.
        masks : array-like of bool, shape (n_samples, H, W), default=None
            Ground-truth defect masks (all false for normal images), for
            ``pixel_method="f1"``.

        Returns
        -------
        self : CalibratedThresholdDetector
        """
        X = _as_indexable(X)
        n = _num_samples(X)
        labels, normal, truth_masks = self._check_fit_inputs(n, y, masks)
        train, held_out = train_test_split(normal, test_size=self.calibration_fraction,
                                           random_state=self.random_state)
        calib = np.sort(np.concatenate([held_out, np.flatnonzero(labels == 1)]))
        estimator = clone(self.estimator).fit(_safe_indexing(X, train))
        X_calib, y_calib = _safe_indexing(X, calib), labels[calib]
        if self.pixel_method is None:
            scores = -np.asarray(estimator.score_samples(X_calib), dtype=np.float64)
            maps = None
        else:
            if hasattr(estimator, "score_samples_and_anomaly_map"):
                normality, maps = estimator.score_samples_and_anomaly_map(X_calib)
            else:
                normality, maps = estimator.score_samples(X_calib), estimator.anomaly_map(X_calib)
            scores = -np.asarray(normality, dtype=np.float64)
        if not np.isfinite(scores).all():
            raise ValueError("The estimator gave NaN or infinite scores on the calibration images.")
        self.threshold_ = _image_threshold(self.method, self.target_fpr, y_calib, scores)
        self.pixel_threshold_ = None
        if maps is not None:
            maps = np.asarray(maps, dtype=np.float64)
            if self.pixel_method == "fpr":
                self.pixel_threshold_ = float(
                    np.quantile(maps[y_calib == 0], 1.0 - self.pixel_target_fpr, method="higher"))
            elif self.pixel_method == "synthetic":
                fake, fake_masks, _ = pseudo_defects(
                    _safe_indexing(X_calib, np.flatnonzero(y_calib == 0)),
                    n_copies=N_PSEUDO_COPIES, random_state=self.random_state)
                fake_maps = np.asarray(estimator.anomaly_map(fake), dtype=np.float64)
                best = f1_max(fake_masks.ravel(), fake_maps.ravel())[1]
                self.pixel_threshold_ = _below(best, fake_maps.ravel())
            else:
                truth = np.asarray(truth_masks)[calib]
                if truth.shape != maps.shape:
                    raise ValueError(
                        f"masks have shape {truth.shape[1:]} per image but the anomaly maps "
                        f"{maps.shape[1:]}; give masks at the images' resolution."
                    )
                best = f1_max(truth.ravel(), maps.ravel())[1]
                self.pixel_threshold_ = _below(best, maps.ravel())
        self.calibration_indices_ = calib
        self.offset_ = -self.threshold_
        if self.refit:
            estimator = clone(self.estimator).fit(_safe_indexing(X, normal))
        self.estimator_ = estimator
        if hasattr(estimator, "n_features_in_"):
            self.n_features_in_ = estimator.n_features_in_
        return self

    score_samples = delegated_method(
        "score_samples", "The estimator's ``score_samples``: higher is more normal.",
        "ndarray of shape (n_samples,)", dtype=np.float64,
    )

    def decision_function(self, X: Any) -> NDArray[np.float64]:
        """``score_samples(X) - offset_``: negative for anomalies.

        Parameters
        ----------
        X : sequence of paths, image array, or array-like
            Samples.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> NDArray[np.int_]:
        """Labels from the calibrated threshold.

        Parameters
        ----------
        X : sequence of paths, image array, or array-like
            Samples.

        Returns
        -------
        ndarray of int, shape (n_samples,)
            +1 normal / -1 anomaly (``output="sign"``) or 0 normal /
            1 anomaly (``output="binary"``).
        """
        anomalous = self.decision_function(X) < 0
        if self.output == "binary":
            return anomalous.astype(int)
        return np.where(anomalous, -1, 1)

    anomaly_map = delegated_method(
        "anomaly_map", "The estimator's anomaly maps (higher = more anomalous).",
        "ndarray of shape (n, H, W)", what="Images",
    )

    @available_if(estimator_has("anomaly_map"))
    def score_samples_and_anomaly_map(self, X: Any) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """``score_samples(X)`` and ``anomaly_map(X)``, in one pass when the estimator can.

        Parameters
        ----------
        X : sequence of paths or image array
            Images.

        Returns
        -------
        scores : ndarray of shape (n,)
        maps : ndarray of shape (n, H, W)
        """
        check_is_fitted(self)
        if hasattr(self.estimator_, "score_samples_and_anomaly_map"):
            scores, maps = self.estimator_.score_samples_and_anomaly_map(X)
            return np.asarray(scores, dtype=np.float64), maps
        return self.score_samples(X), self.estimator_.anomaly_map(X)

    @available_if(estimator_has("anomaly_map"))
    def predict_mask(self, X: Any) -> NDArray[np.bool_]:
        """Binary defect masks: ``anomaly_map(X) > pixel_threshold_``.

        Parameters
        ----------
        X : sequence of paths or image array
            Images.

        Returns
        -------
        ndarray of bool, shape (n, H, W)
        """
        check_is_fitted(self)
        if self.pixel_threshold_ is None:
            raise ValueError(
                "No pixel threshold was calibrated; set pixel_method='fpr' or 'f1' and refit."
            )
        return np.asarray(self.anomaly_map(X)) > self.pixel_threshold_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.input_tags = inner.input_tags
        tags.input_tags.sparse = False  # dense arrays or paths only
        tags.non_deterministic = inner.non_deterministic
        return tags
