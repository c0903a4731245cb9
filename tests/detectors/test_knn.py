"""KNNDetector: estimator checks, exactness against scikit-learn, leave-one-out training scores."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import parametrize_with_checks

from mvtec_sklearn.detectors import KNNDetector, PyODDetector

TRAIN_REASON = (
    "training scores are leave-one-out (each sample's own match excluded), so the "
    "threshold is calibrated for unseen samples; predict on the training set itself, "
    "where every sample is its own nearest neighbour, flags fewer than contamination"
)
FIT_PREDICT_REASON = (
    "fit_predict labels the training samples from their leave-one-out scores and flags "
    "contamination of them (tested in test_fit_predict_flags_contamination_like_pyod), so it differs "
    "from fit(X).predict(X), which scores each training sample against itself"
)


def _expected_failed_checks(estimator):
    return {"check_outliers_train": TRAIN_REASON, "check_outliers_fit_predict": FIT_PREDICT_REASON}


@parametrize_with_checks(
    [
        KNNDetector(device="cpu"),
        KNNDetector(method="median", metric="cosine", device="cpu", batch_size=64),
        KNNDetector(method="max", metric="manhattan", device="cpu", batch_size=64),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _sklearn_distances(X_train, X_query, k, metric):
    sk_metric = {"sqeuclidean": "euclidean"}.get(metric, metric)
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=sk_metric).fit(X_train)
    dist = nn.kneighbors(X_query)[0] if X_query is not None else nn.kneighbors()[0]
    return dist**2 if metric == "sqeuclidean" else dist


AGGREGATE = {"mean": np.mean, "max": np.max, "median": np.median}


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine", "manhattan"])
@pytest.mark.parametrize("method", ["mean", "max", "median"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scores_match_sklearn_brute_force(metric, method, dtype):
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(60, 6)).astype(dtype)
    X_query = rng.normal(size=(25, 6)).astype(dtype)
    det = KNNDetector(n_neighbors=4, method=method, metric=metric, batch_size=7, device="cpu")
    det.fit(X_train)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    atol = 1e-9 if dtype == np.float64 else 1e-4
    expected = -AGGREGATE[method](_sklearn_distances(X_train, X_query, 4, metric), axis=1)
    np.testing.assert_allclose(det.score_samples(X_query), expected, rtol=rtol, atol=atol)
    # offset_ comes from leave-one-out training scores (kneighbors() without X excludes self)
    loo = -AGGREGATE[method](_sklearn_distances(X_train, None, 4, metric), axis=1)
    np.testing.assert_allclose(det.offset_, np.percentile(loo, 10), rtol=rtol, atol=atol)


def test_self_exclusion_removes_exactly_one_match_for_duplicates():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(20, 3))
    X = np.vstack([base, base])  # every training row has an exact twin
    det = KNNDetector(n_neighbors=1, contamination=0.5, device="cpu").fit(X)
    # the twin is still a neighbour at distance 0: leave-one-out score 0 for all
    assert det.offset_ == 0.0
    det2 = KNNDetector(n_neighbors=2, method="max", contamination=0.5, device="cpu").fit(X)
    # second neighbour is a genuinely different point
    assert det2.offset_ < 0.0


def test_offset_is_calibrated_on_unseen_normals():
    rng = np.random.default_rng(2)
    X_train = rng.normal(size=(1000, 4))
    X_new = rng.normal(size=(4000, 4))
    det = KNNDetector(n_neighbors=5, contamination=0.1, device="cpu").fit(X_train)
    flagged_new = np.mean(det.predict(X_new) == -1)
    flagged_train = np.mean(det.predict(X_train) == -1)
    assert 0.07 < flagged_new < 0.13
    assert flagged_train < flagged_new


def test_too_many_neighbours_are_clipped_with_warning():
    X = np.random.default_rng(3).normal(size=(4, 2))
    with pytest.warns(UserWarning, match="n_neighbors = n_samples - 1 = 3"):
        det = KNNDetector(n_neighbors=10, device="cpu").fit(X)
    assert det.n_neighbors_ == 3
    assert det.score_samples(X).shape == (4,)


def test_one_training_sample_is_rejected():
    with pytest.raises(ValueError, match="1 sample"):
        KNNDetector(device="cpu").fit(np.zeros((1, 3)))


def test_matches_pyod_knn():
    from pyod.models.knn import KNN

    rng = np.random.default_rng(4)
    X_train, X_test = rng.normal(size=(80, 5)), rng.normal(size=(30, 5))
    ours = KNNDetector(n_neighbors=5, method="median", device="cpu").fit(X_train)
    pyod = PyODDetector(KNN(n_neighbors=5, method="median")).fit(X_train)
    np.testing.assert_allclose(ours.score_samples(X_test), pyod.score_samples(X_test), rtol=1e-10)
    np.testing.assert_allclose(ours.offset_, pyod.offset_, rtol=1e-10)


def test_fitted_data_is_a_cpu_numpy_array_of_the_input_dtype():
    X = np.random.default_rng(5).normal(size=(10, 3)).astype(np.float32)
    det = KNNDetector(n_neighbors=2, device="cpu").fit(X)
    assert isinstance(det.fit_X_, np.ndarray) and det.fit_X_.dtype == np.float32
    assert det.score_samples(X).dtype == np.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(6)
    X_train, X_test = rng.normal(size=(300, 16)), rng.normal(size=(50, 16))
    for metric in ["euclidean", "cosine", "manhattan"]:
        cpu = KNNDetector(metric=metric, device="cpu").fit(X_train)
        gpu = KNNDetector(metric=metric, device="cuda").fit(X_train)
        np.testing.assert_allclose(gpu.score_samples(X_test), cpu.score_samples(X_test), rtol=1e-6)
        np.testing.assert_allclose(gpu.offset_, cpu.offset_, rtol=1e-6)


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.25])
@pytest.mark.parametrize("method", ["mean", "max"])
def test_fit_predict_flags_contamination_like_pyod(contamination, method):
    from pyod.models.knn import KNN

    X = np.random.default_rng(0).normal(size=(200, 4))
    det = KNNDetector(contamination=contamination, method=method, device="cpu")
    labels = det.fit_predict(X)
    assert labels.dtype.kind == "i" and set(np.unique(labels)) == {-1, 1}
    assert (labels == -1).sum() == round(contamination * 200)
    pyod = KNN(n_neighbors=5, method="largest" if method == "max" else method,
               contamination=contamination).fit(X)
    np.testing.assert_array_equal(labels, np.where(pyod.labels_ == 1, -1, 1))
    # the same fitted state as fit
    fitted = KNNDetector(contamination=contamination, method=method, device="cpu").fit(X)
    assert det.offset_ == fitted.offset_
    np.testing.assert_array_equal(det.score_samples(X[:5]), fitted.score_samples(X[:5]))
