"""PyODDetector: estimator checks for several PyOD models and the score conversion."""

import numpy as np
import pytest
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from pyod.models.ocsvm import OCSVM
from pyod.models.pca import PCA
from sklearn.utils.estimator_checks import parametrize_with_checks

from mvtec_sklearn.detectors import PyODDetector

LOO_REASON = (
    "PyOD's KNN training scores (decision_scores_, which set offset_) exclude each "
    "sample's own match, so predict on the training set itself flags fewer than "
    "contamination; the threshold is calibrated for unseen samples"
)


def _expected_failed_checks(estimator):
    if estimator.detector is None or isinstance(estimator.detector, KNN):
        return {"check_outliers_train": LOO_REASON, "check_outliers_fit_predict": LOO_REASON}
    return {}


@parametrize_with_checks(
    [
        PyODDetector(),
        PyODDetector(IForest(n_estimators=20, random_state=0)),
        PyODDetector(PCA()),
        PyODDetector(OCSVM()),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 4)), np.vstack([rng.normal(size=(10, 4)), rng.normal(6, 1, size=(5, 4))])


def test_scores_are_negated_pyod_scores(data):
    X_train, X_test = data
    template = IForest(n_estimators=30, random_state=0)
    det = PyODDetector(template).fit(X_train)
    assert not hasattr(template, "decision_scores_")  # the template is cloned, not fitted
    np.testing.assert_array_equal(det.score_samples(X_test), -det.detector_.decision_function(X_test))
    # the obvious outliers (last five) have the lowest scores
    assert det.score_samples(X_test)[-5:].max() < det.score_samples(X_test)[:10].min()
    np.testing.assert_array_equal(det.predict(X_test)[-5:], -1)


def test_predict_agrees_with_pyod_labels_at_same_contamination(data):
    X_train, _ = data
    det = PyODDetector(IForest(n_estimators=30, contamination=0.15, random_state=0), contamination=0.15)
    labels = det.fit(X_train).predict(X_train)
    np.testing.assert_array_equal(labels, np.where(det.detector_.labels_ == 1, -1, 1))


def test_default_detector_is_pyod_knn(data):
    X_train, X_test = data
    det = PyODDetector().fit(X_train)
    assert isinstance(det.detector_, KNN)
    np.testing.assert_allclose(det.offset_, np.percentile(-det.detector_.decision_scores_, 10))


def test_rejects_object_without_decision_function():
    with pytest.raises(ValueError, match="detector"):
        PyODDetector(detector=object()).fit(np.zeros((5, 2)))
