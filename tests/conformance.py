"""Shared conformance checks for every image-input estimator (docs/architecture.md).

Use from a test module::

    from tests.conformance import check_image_estimator

    def test_conformance(image_paths):
        check_image_estimator(MyEstimator(random_state=0), image_paths)

The estimator's output method is ``score_samples`` for detectors and
``transform`` for transformers; detectors with ``anomaly_map`` get that
checked too, and ``score_samples_and_anomaly_map`` must give both at once.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from mvtec_sklearn.datasets import read_image


def _outputs(est, X):
    """Everything an estimator computes from X, as a dict of arrays."""
    out = {}
    if hasattr(est, "score_samples"):
        out["score_samples"] = np.asarray(est.score_samples(X))
    if hasattr(est, "transform"):
        out["transform"] = np.asarray(est.transform(X))
    if hasattr(est, "anomaly_map"):
        out["anomaly_map"] = np.asarray(est.anomaly_map(X))
    assert out, f"{type(est).__name__} has neither score_samples nor transform"
    return out


def _assert_same(a, b, rtol=1e-5, atol=1e-6, what=""):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=atol, err_msg=f"{what}: {key}")


def check_image_estimator(estimator, paths, *, paths_arrays_rtol=1e-4, paths_arrays_atol=1e-4):
    """Run the conformance checks of docs/architecture.md on ``estimator``.

    Parameters
    ----------
    estimator : estimator
        Unfitted image-input estimator with a ``random_state`` (if random).
    paths : list of str
        At least 6 image files of one size (the fixture ``image_paths``).
    """
    paths = list(paths)
    arrays = np.stack([read_image(p) for p in paths])

    # clone and get/set_params
    params = estimator.get_params()
    cloned = clone(estimator)
    assert cloned.get_params().keys() == params.keys()
    for key, value in params.items():
        copied = cloned.get_params()[key]
        if isinstance(value, (str, int, float, bool, tuple, type(None))):
            assert copied == value, key
        else:  # estimators and objects (e.g. an nn.Module backbone) are copied by clone
            assert type(copied) is type(value), key
    assert clone(estimator).set_params(**{k: v for k, v in params.items() if "__" not in k})

    # NotFittedError before fit
    unfitted = clone(estimator)
    for method in ("score_samples", "transform", "anomaly_map", "decision_function", "predict"):
        if hasattr(unfitted, method):
            with pytest.raises(NotFittedError):
                getattr(unfitted, method)(paths[:2])

    # fit returns self
    est = clone(estimator)
    assert est.fit(paths) is est
    out = _outputs(est, paths)
    n = len(paths)
    for key, value in out.items():
        assert value.shape[0] == n, (key, value.shape)
        assert np.all(np.isfinite(value)), key
    if "anomaly_map" in out:
        assert out["anomaly_map"].shape == (n,) + arrays.shape[1:3]
    if hasattr(est, "score_samples_and_anomaly_map"):
        scores, maps = est.score_samples_and_anomaly_map(paths)
        assert scores.dtype == np.float64 and maps.dtype == np.float32
        _assert_same({"score_samples": scores, "anomaly_map": maps},
                     {k: out[k] for k in ("score_samples", "anomaly_map")},
                     what="score_samples_and_anomaly_map")
    if hasattr(est, "predict"):
        pred = est.predict(paths)
        assert set(np.unique(pred)) <= {-1, 1}
        np.testing.assert_allclose(
            est.decision_function(paths), out["score_samples"] - est.offset_, rtol=1e-6, atol=1e-6
        )

    # same random_state -> same output
    again = clone(estimator).fit(paths)
    _assert_same(out, _outputs(again, paths), what="refit with the same random_state")

    # pickle round trip
    restored = pickle.loads(pickle.dumps(est))
    _assert_same(out, _outputs(restored, paths), rtol=1e-6, atol=1e-7, what="pickle round trip")

    # paths and arrays agree (fit on arrays, predict on both)
    est_arr = clone(estimator).fit(arrays)
    _assert_same(
        out, _outputs(est_arr, arrays), rtol=paths_arrays_rtol, atol=paths_arrays_atol,
        what="paths vs arrays",
    )
    _assert_same(
        _outputs(est_arr, paths), _outputs(est_arr, arrays),
        rtol=paths_arrays_rtol, atol=paths_arrays_atol, what="paths vs arrays (same fit)",
    )

    # bad input raises a clear error
    method = "score_samples" if hasattr(est, "score_samples") else "transform"
    with pytest.raises(ValueError, match="(?i)empty"):
        clone(estimator).fit([])
    with pytest.raises(ValueError, match="(?i)dimension|shape"):
        getattr(est, method)(np.zeros((3, 8), dtype=np.uint8))
    missing = os.path.join(os.path.dirname(paths[0]), "does_not_exist.png")
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        getattr(est, method)([missing])
    return est
