"""examples/grid_search.py end to end on the tiny synthetic dataset."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sklearn.svm import OneClassSVM

from mvtec_sklearn.datasets import load_mvtec
from mvtec_sklearn.features import ResNetFeaturizer
from mvtec_sklearn.metrics import image_auroc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "grid_search.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("grid_search_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_search_example(example, mvtec_root, tmp_path):
    grid = {"ocsvm__nu": [0.1, 0.5]}
    search, final = example.main(
        mvtec_root, "bottle", image_size=32, n_splits=2, param_grid=grid, cache_dir=str(tmp_path), verbose=False
    )
    # features were computed once per fold (not once per (candidate, fold)) and once for the refit
    cached = [p for p in tmp_path.rglob("*") if p.is_dir() and (p / "output.pkl").exists()]
    assert len(cached) == 3
    # the search's fold scores are normal-only training + image AUROC on the test fold
    train = load_mvtec(mvtec_root, "bottle", split="train")
    test = load_mvtec(mvtec_root, "bottle", split="test")
    X = list(train.paths) + list(test.paths)
    y = np.r_[np.zeros(len(train.paths), dtype=int), np.asarray(test.target, dtype=int)]
    features = ResNetFeaturizer(weights=None, image_size=32, random_state=0).fit(X).transform(X)
    for i, (tr, te) in enumerate(search.cv.split(X, y)):
        assert np.all(y[tr] == 0)
        for j, params in enumerate(search.cv_results_["params"]):
            svm = OneClassSVM(nu=params["estimator__ocsvm__nu"]).fit(features[tr])
            expected = image_auroc(y[te], -svm.score_samples(features[te]))
            assert search.cv_results_[f"split{i}_test_score"][j] == pytest.approx(expected, abs=1e-6)
    # the final model uses the best parameters, was refitted on the normal images only
    assert final.get_params()["ocsvm__nu"] == search.best_params_["estimator__ocsvm__nu"]
    assert search.best_estimator_.n_normal_ == int((y == 0).sum())
    assert search.best_estimator_.n_anomalies_dropped_ == int(y.sum()) > 0
    normal = [x for x, label in zip(X, y) if label == 0]
    expected = OneClassSVM(nu=search.best_params_["estimator__ocsvm__nu"]).fit(
        ResNetFeaturizer(weights=None, image_size=32, random_state=0).fit(normal).transform(normal)
    )
    np.testing.assert_allclose(final.score_samples(test.paths), expected.score_samples(
        ResNetFeaturizer(weights=None, image_size=32, random_state=0).fit(normal).transform(test.paths)
    ), rtol=1e-6)
