"""The delegating methods shared by the meta-estimators."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from mvtec_sklearn.model_selection._delegation import delegated_method, estimator_has


class _Inner:
    def score_samples(self, X):
        return np.asarray(X, dtype=np.float32).sum(axis=1)


class _Meta(BaseEstimator):
    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X):
        self.estimator_ = self.estimator
        return self

    score_samples = delegated_method("score_samples", "Summary line.", "ndarray")
    scores64 = delegated_method("score_samples", "As float64.", "ndarray", dtype=np.float64)
    anomaly_map = delegated_method("anomaly_map", "Maps.", "ndarray", what="Images")


def test_estimator_has_prefers_the_fitted_estimator():
    meta = _Meta(object())
    assert not estimator_has("score_samples")(meta)
    meta.estimator_ = _Inner()
    assert estimator_has("score_samples")(meta)


def test_delegated_method_delegates_after_fit_only():
    X = np.ones((3, 2))
    meta = _Meta(_Inner())
    with pytest.raises(NotFittedError):
        meta.score_samples(X)
    meta.fit(X)
    out = meta.score_samples(X)
    assert out.dtype == np.float32 and out.tolist() == [2.0, 2.0, 2.0]
    # the name is the estimator's method; dtype converts the result
    assert meta.scores64.__name__ == "score_samples"
    assert meta.scores64(X).dtype == np.float64


def test_delegated_method_exists_only_when_the_estimator_has_it():
    meta = _Meta(_Inner())
    assert hasattr(meta, "score_samples") and not hasattr(meta, "anomaly_map")


def test_delegated_method_docstring_is_numpydoc():
    doc = _Meta.anomaly_map.__doc__
    assert doc.startswith("Maps.")
    assert "Parameters\n----------\nX : array-like or sequence of paths\n    Images." in doc
    assert "Returns\n-------\nndarray" in doc
