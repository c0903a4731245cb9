"""PyODDetector: estimator checks for several PyOD models and the score conversion."""

import numpy as np
import pytest
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from pyod.models.ocsvm import OCSVM
from pyod.models.pca import PCA
from sklearn.utils.estimator_checks import parametrize_with_checks

from mvtec_sklearn.detectors import PyODDetector

TRAIN_REASON = (
    "PyOD's KNN training scores (decision_scores_, which set offset_) exclude each "
    "sample's own match, so predict on the training set itself flags fewer than "
    "contamination; the threshold is calibrated for unseen samples"
)
FIT_PREDICT_REASON = (
    "fit_predict returns PyOD's labels_ (from the leave-one-out decision_scores_ of KNN, "
    "flagging contamination of the training samples, see test_fit_predict_is_pyod_labels), "
    "so it differs from fit(X).predict(X), which scores each training sample against itself"
)


def _expected_failed_checks(estimator):
    if estimator.detector is None or isinstance(estimator.detector, KNN):
        return {"check_outliers_train": TRAIN_REASON, "check_outliers_fit_predict": FIT_PREDICT_REASON}
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


@pytest.mark.parametrize("model", [KNN(), IForest(n_estimators=30, random_state=0)], ids=["knn", "iforest"])
def test_pyod_attributes_have_pyod_meaning(data, model):
    X_train, _ = data
    det = PyODDetector(model.set_params(contamination=0.15), contamination=0.15).fit(X_train)
    np.testing.assert_array_equal(det.decision_scores_, det.detector_.decision_scores_)
    assert det.threshold_ == pytest.approx(det.detector_.threshold_) and det.threshold_ == -det.offset_
    np.testing.assert_array_equal(det.labels_, det.detector_.labels_)
    assert det.labels_.sum() == 18  # 15 % of 120


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.2])
def test_fit_predict_is_pyod_labels(data, contamination):
    X_train, _ = data
    det = PyODDetector(KNN(), contamination=contamination)
    labels = det.fit_predict(X_train)
    assert labels.dtype.kind == "i"
    # PyOD's KNN ("largest" distance) has tied training scores: up to one off
    assert abs((labels == -1).sum() - contamination * len(X_train)) <= 1
    np.testing.assert_array_equal(labels, np.where(det.labels_ == 1, -1, 1))
    pyod_labels = KNN(contamination=contamination).fit(X_train).labels_
    np.testing.assert_array_equal(labels, np.where(pyod_labels == 1, -1, 1))


def test_deep_pyod_model_on_a_fold_smaller_than_its_batch():
    from pyod.models.auto_encoder import AutoEncoder

    X = np.random.default_rng(0).normal(size=(20, 6))
    model = AutoEncoder(epoch_num=2, batch_size=32, verbose=0, random_state=0)
    with pytest.warns(UserWarning, match="batch_size=32 of AutoEncoder exceeds the 20 training"):
        det = PyODDetector(model).fit(X)
    assert det.detector_.batch_size == 20 and model.batch_size == 32  # the template is untouched
    assert np.isfinite(det.score_samples(X)).all()


def test_raw_pyod_model_in_a_pipeline_names_the_adapter(data):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mvtec_sklearn.metrics import anomaly_scores
    from mvtec_sklearn.model_selection import NormalOnlyKFold

    X_train, X_test = data
    pipe = make_pipeline(StandardScaler(), KNN()).fit(X_train)
    with pytest.raises(TypeError, match=r"KNN is a PyOD model.*PyODDetector\(KNN\(...\)\)"):
        anomaly_scores(pipe, X_test)
    X = np.vstack([X_train, X_test])
    y = np.r_[np.zeros(len(X_train), int), np.zeros(10, int), np.ones(5, int)]
    search = GridSearchCV(make_pipeline(StandardScaler(), KNN()), {"knn__n_neighbors": [3]},
                          scoring="image_auroc", cv=NormalOnlyKFold(2), refit=False, error_score="raise")
    with pytest.raises(TypeError, match="PyODDetector"):
        search.fit(X, y)
