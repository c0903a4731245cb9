"""Anomaly scorers: any detector or pipeline, names usable as scoring= in scikit-learn."""

import numpy as np
import pytest
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.metrics import get_scorer as sklearn_get_scorer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score, cross_validate
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from mvtec_sklearn.detectors import KNNDetector
from mvtec_sklearn.metrics import (
    SCORERS,
    anomaly_scores,
    aupr,
    f1_max,
    get_scorer,
    get_scorer_names,
    image_auroc,
    make_anomaly_scorer,
)
from mvtec_sklearn.model_selection import NormalOnlyKFold
from tests._data import normal_and_shifted


@pytest.fixture(scope="module")
def data():
    return normal_and_shifted(2.5)


DETECTORS = [
    OneClassSVM(gamma=0.1),
    IsolationForest(n_estimators=20, random_state=0),
    LocalOutlierFactor(novelty=True),
    EllipticEnvelope(random_state=0),
    KNNDetector(device="cpu"),
    make_pipeline(StandardScaler(), IsolationForest(n_estimators=20, random_state=0)),
    make_pipeline(StandardScaler(), KNNDetector(device="cpu")),
]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__ + str(len(getattr(d, "steps", []))))
def test_anomaly_scores_negate_score_samples(detector, data):
    X_train, X_test, y_test = data
    detector.fit(X_train)
    scores = anomaly_scores(detector, X_test)
    np.testing.assert_array_equal(scores, -detector.score_samples(X_test))
    assert scores.dtype == np.float64
    # the shifted cluster is more anomalous: all detectors do far better than chance
    assert make_anomaly_scorer("image_auroc")(detector, X_test, y_test) > 0.8


def test_lof_without_novelty_gets_a_hint(data):
    X_train, X_test, _ = data
    lof = LocalOutlierFactor().fit(X_train)
    with pytest.raises(TypeError, match="novelty=True"):
        anomaly_scores(lof, X_test)


@pytest.mark.parametrize("name", ["image_auroc", "aupr", "f1_max"])
def test_scorer_equals_metric_on_anomaly_scores(name, data):
    X_train, X_test, y_test = data
    det = OneClassSVM(gamma=0.1).fit(X_train)
    anomaly = -det.score_samples(X_test)
    expected = {"image_auroc": image_auroc, "aupr": aupr, "f1_max": lambda y, s: f1_max(y, s)[0]}[name](y_test, anomaly)
    assert make_anomaly_scorer(name)(det, X_test, y_test) == pytest.approx(expected)
    assert get_scorer(name)(det, X_test, y_test) == pytest.approx(expected)
    assert SCORERS[name](det, X_test, y_test) == pytest.approx(expected)
    # registered with scikit-learn too
    assert sklearn_get_scorer(name)(det, X_test, y_test) == pytest.approx(expected)


def test_callable_metric_with_kwargs(data):
    X_train, X_test, y_test = data
    det = KNNDetector(device="cpu").fit(X_train)
    scorer = make_anomaly_scorer(roc_auc_score, max_fpr=0.2)
    assert "max_fpr=0.2" in repr(scorer)
    expected = roc_auc_score(y_test, -det.score_samples(X_test), max_fpr=0.2)
    assert scorer(det, X_test, y_test) == pytest.approx(expected)


def test_bad_metric():
    with pytest.raises(ValueError, match="Unknown anomaly metric"):
        make_anomaly_scorer("pixel_auroc")
    with pytest.raises(TypeError, match="callable"):
        make_anomaly_scorer(3)


def test_names_and_sklearn_fallback():
    assert get_scorer_names() == ["aupr", "f1_max", "image_auroc"]
    assert repr(get_scorer("accuracy")) == repr(sklearn_get_scorer("accuracy"))
    # registering adds names, it does not replace scikit-learn's own
    assert "roc_auc_score" in repr(sklearn_get_scorer("roc_auc"))


def _pooled(data):
    X_train, X_test, y_test = data
    return np.vstack([X_train, X_test]), np.r_[np.zeros(len(X_train), dtype=int), y_test]


def test_string_names_work_in_grid_search(data):
    X, y = _pooled(data)
    grid = {"gamma": [0.01, 0.5]}
    by_name = GridSearchCV(OneClassSVM(), grid, scoring="image_auroc", cv=NormalOnlyKFold(3), refit=False)
    by_name.fit(X, y)
    by_scorer = GridSearchCV(
        OneClassSVM(), grid, scoring=make_anomaly_scorer("image_auroc"), cv=NormalOnlyKFold(3), refit=False
    )
    by_scorer.fit(X, y)
    np.testing.assert_allclose(by_name.cv_results_["mean_test_score"], by_scorer.cv_results_["mean_test_score"])
    assert 0.5 < by_name.best_score_ <= 1.0


def test_multi_metric_names_and_dict(data):
    X, y = _pooled(data)
    search = RandomizedSearchCV(
        LocalOutlierFactor(novelty=True),
        {"n_neighbors": [3, 10, 20]},
        n_iter=2,
        random_state=0,
        scoring=["image_auroc", "aupr", "f1_max"],
        refit=False,
        cv=NormalOnlyKFold(2),
    ).fit(X, y)
    assert {"mean_test_image_auroc", "mean_test_aupr", "mean_test_f1_max"} <= set(search.cv_results_)
    results = cross_validate(OneClassSVM(), X, y, scoring=SCORERS, cv=NormalOnlyKFold(2))
    assert set(results) >= {"test_image_auroc", "test_aupr", "test_f1_max"}


def test_cross_val_score_with_name_in_parallel(data):
    X, y = _pooled(data)
    serial = cross_val_score(KNNDetector(device="cpu"), X, y, scoring="aupr", cv=NormalOnlyKFold(3))
    parallel = cross_val_score(KNNDetector(device="cpu"), X, y, scoring="aupr", cv=NormalOnlyKFold(3), n_jobs=2)
    np.testing.assert_allclose(serial, parallel)


@pytest.mark.parametrize(("name", "instead"), [("roc_auc", "image_auroc"), ("average_precision", "aupr")])
def test_get_scorer_warns_for_inverted_sklearn_names(name, instead):
    from mvtec_sklearn.metrics import get_scorer

    with pytest.warns(UserWarning, match=f"scoring={name!r} ranks decision_function.*{instead!r}"):
        get_scorer(name)
