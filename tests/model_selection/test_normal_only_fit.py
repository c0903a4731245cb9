"""NormalOnlyFit and the search guard of NormalOnlyKFold: a refit never trains on anomalies."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from mvtec_sklearn.detectors import KNNDetector
from mvtec_sklearn.model_selection import NormalOnlyFit, NormalOnlyKFold


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(46, 3)), rng.normal(3, 1, size=(8, 3))])
    y = np.r_[np.zeros(46, dtype=int), np.ones(8, dtype=int)]
    order = rng.permutation(len(y))
    return X[order], y[order]


# Not under parametrize_with_checks: its checks fit with class labels such as
# {0, 1, 2}, which NormalOnlyFit refuses (y holds anomaly labels 0/1 only).
def test_meta_estimator_basics(data):
    import pickle

    from sklearn.exceptions import NotFittedError

    X, y = data
    det = NormalOnlyFit(KNNDetector(device="cpu"))
    assert clone(det).get_params()["estimator__n_neighbors"] == 5
    with pytest.raises(NotFittedError):
        det.score_samples(X)
    assert det.fit(X, y) is det
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    np.testing.assert_array_equal(det.fit_predict(X, y), det.predict(X))


@pytest.mark.parametrize(
    "make_search",
    [
        lambda est, cv, **kw: GridSearchCV(est, {"oneclasssvm__nu": [0.1, 0.3]}, scoring="image_auroc", cv=cv, **kw),
        lambda est, cv, **kw: RandomizedSearchCV(est, {"oneclasssvm__nu": [0.1, 0.3]}, n_iter=2, random_state=0,
                                                 scoring="image_auroc", cv=cv, **kw),
    ],
    ids=["grid", "randomized"],
)
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_search_refit_on_anomalies_is_refused(data, make_search, n_jobs):
    X, y = data
    pipe = make_pipeline(StandardScaler(), OneClassSVM())
    with pytest.raises(ValueError, match=r"refit=True\) would refit the best Pipeline on all of X, including "
                       r"its 8 samples labelled anomalous.*NormalOnlyFit\(estimator\)"):
        make_search(pipe, NormalOnlyKFold(3), n_jobs=n_jobs).fit(X, y)
    # refit=False: cross-validation only, nothing refitted
    search = make_search(pipe, NormalOnlyKFold(3), n_jobs=n_jobs, refit=False).fit(X, y)
    assert not hasattr(search, "best_estimator_")


def test_normal_only_fit_refit_trains_on_normal_samples_only(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), OneClassSVM())
    search = GridSearchCV(NormalOnlyFit(pipe), {"estimator__oneclasssvm__nu": [0.1, 0.3]},
                          scoring="image_auroc", cv=NormalOnlyKFold(3)).fit(X, y)
    best = search.best_estimator_
    assert best.n_normal_ == 46 and best.n_anomalies_dropped_ == 8
    nu = search.best_params_["estimator__oneclasssvm__nu"]
    expected = clone(pipe).set_params(oneclasssvm__nu=nu).fit(X[y == 0])
    np.testing.assert_allclose(search.score_samples(X), expected.score_samples(X))
    np.testing.assert_array_equal(search.predict(X), expected.predict(X))
    np.testing.assert_allclose(best.decision_function(X), expected.decision_function(X))
    # the cross-validated scores are the same as with refit=False on the bare pipeline
    bare = GridSearchCV(pipe, {"oneclasssvm__nu": [0.1, 0.3]}, scoring="image_auroc",
                        cv=NormalOnlyKFold(3), refit=False).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], bare.cv_results_["mean_test_score"])


def test_normal_only_fit_without_y_uses_every_sample_and_indexes_lists(data):
    X, y = data
    det = NormalOnlyFit(KNNDetector(device="cpu")).fit(X)
    assert det.n_normal_ == len(X) and det.n_anomalies_dropped_ == 0
    paths = [f"img_{i}.png" for i in range(6)]

    class Recorder(OneClassSVM):
        def fit(self, X, y=None):
            self.seen_ = list(X)
            return self

    fitted = NormalOnlyFit(Recorder()).fit(paths, [0, 1, 0, 0, 1, 0])
    assert fitted.estimator_.seen_ == ["img_0.png", "img_2.png", "img_3.png", "img_5.png"]


def test_normal_only_fit_errors_and_delegation(data):
    X, y = data
    with pytest.raises(ValueError, match="0 \\(normal\\) and 1 \\(anomalous\\)"):
        NormalOnlyFit(OneClassSVM()).fit(X, np.full(len(X), 2))
    with pytest.raises(ValueError, match="needs normal samples"):
        NormalOnlyFit(OneClassSVM()).fit(X, np.ones(len(X), dtype=int))
    with pytest.raises(TypeError, match="estimator.* must be an object implementing .fit."):
        NormalOnlyFit("svm").fit(X, y)
    scaler_only = NormalOnlyFit(StandardScaler())
    assert not hasattr(scaler_only, "score_samples") and not hasattr(scaler_only, "predict")
    assert not hasattr(NormalOnlyFit(OneClassSVM()), "anomaly_map")


def test_cross_validate_is_not_a_search(data):
    X, y = data
    scores = cross_validate(OneClassSVM(), X, y, scoring="image_auroc", cv=NormalOnlyKFold(3))
    assert scores["test_score"].shape == (3,)


def test_inverted_sklearn_scorer_name_warns_in_a_search(data):
    X, y = data
    with pytest.warns(UserWarning, match="scoring='roc_auc' ranks decision_function.*'image_auroc'"):
        search = GridSearchCV(OneClassSVM(), {"nu": [0.1]}, scoring="roc_auc", cv=NormalOnlyKFold(3),
                              refit=False).fit(X, y)
    ours = GridSearchCV(OneClassSVM(), {"nu": [0.1]}, scoring="image_auroc", cv=NormalOnlyKFold(3),
                        refit=False).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], 1 - ours.cv_results_["mean_test_score"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GridSearchCV(OneClassSVM(), {"nu": [0.1]}, scoring=["image_auroc", "aupr"], refit=False,
                     cv=NormalOnlyKFold(3)).fit(X, y)
