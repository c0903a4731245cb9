"""Every registry model round-trips through joblib with the same scores; torch state is saved on the CPU.

Each :data:`mvtec_sklearn.benchmark.MODEL_REGISTRY` entry is built as the
benchmark builds it (``featurizer -> detector``, 32 px, deep models trained for
one epoch), fitted on a few synthetic good images, dumped with ``joblib.dump``,
loaded back and compared on the test images (``score_samples`` and, for map
models, ``anomaly_map``). The tolerance is rtol=1e-5, not equality: pipelines that
compute in float32 (``ImageLoader`` + scikit-learn ``PCA``) may sum in a different
order after loading, because a loaded array can have another memory layout.

A model fitted on a GPU must load on a CPU-only machine: the pickled state of
every torch model holds CPU tensors only, and loading it works with
``torch.cuda.is_available`` patched to False. On a machine with CUDA, the last
test fits on the GPU and loads the file in a process that sees no GPU.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline

from mvtec_sklearn.benchmark import MODEL_REGISTRY
from mvtec_sklearn.datasets import load_mvtec

IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def bottle(mvtec_root):
    train = load_mvtec(mvtec_root, "bottle", split="train")
    test = load_mvtec(mvtec_root, "bottle", split="test")
    return list(train.paths[:8]), list(test.paths[:6])


_FITTED_FEATURIZERS = {}


def build_and_fit(name, train):
    """The registry model fitted on ``train``: a detector, or a pipeline featurizer -> detector.

    Models that share a featurizer configuration share one fitted featurizer
    (as in the benchmark), which keeps this test fast.
    """
    spec = MODEL_REGISTRY[name]
    featurizer, detector = spec.build(image_size=IMAGE_SIZE, random_state=0)
    # the smallest training budget: this tests persistence, not accuracy
    detector.set_params(**{k: 1 for k in detector.get_params() if k.split("__")[-1] == "max_epochs"})
    if featurizer is None:
        return detector.fit(train)
    if spec.featurizer not in _FITTED_FEATURIZERS:
        _FITTED_FEATURIZERS[spec.featurizer] = featurizer.fit(train)
    featurizer = _FITTED_FEATURIZERS[spec.featurizer]
    detector.fit(featurizer.transform(train))
    return make_pipeline(featurizer, detector)


class _TensorDevices(pickle.Pickler):
    """Pickler that records the device of every torch tensor it writes."""

    def __init__(self, file):
        super().__init__(file)
        self.devices = set()

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            self.devices.add(obj.device.type)
        return NotImplemented


def pickled_tensor_devices(estimator):
    pickler = _TensorDevices(io.BytesIO())
    pickler.dump(estimator)
    return pickler.devices


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODEL_REGISTRY))
def test_registry_model_round_trips(name, bottle, tmp_path, monkeypatch):
    train, test = bottle
    estimator = build_and_fit(name, train)
    scores = estimator.score_samples(test)
    maps = estimator.anomaly_map(test) if MODEL_REGISTRY[name].has_anomaly_map else None

    assert pickled_tensor_devices(estimator) <= {"cpu"}
    path = tmp_path / f"{name}.joblib"
    joblib.dump(estimator, path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # loading on a CPU-only machine
    loaded = joblib.load(path)

    np.testing.assert_allclose(loaded.score_samples(test), scores, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(loaded.predict(test), estimator.predict(test))
    if maps is not None:
        np.testing.assert_allclose(loaded.anomaly_map(test), maps, rtol=1e-5, atol=1e-6)


def test_registry_is_covered():
    # the parametrization above runs over the live registry: make sure it is the full one
    assert {"patchcore", "padim", "autoencoder", "vae", "gan", "transformer", "knn-effnet"} <= set(MODEL_REGISTRY)


_LOAD_WITHOUT_GPU = textwrap.dedent("""
    import sys, joblib, numpy as np, torch
    assert not torch.cuda.is_available()
    model = joblib.load(sys.argv[1])
    np.save(sys.argv[2], model.score_samples(sys.argv[3:]))
""")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU to fit on")
@pytest.mark.parametrize("name", ["autoencoder", "patchcore", "knn-effnet"])
def test_model_fitted_on_gpu_loads_without_gpu(name, bottle, tmp_path):
    train, test = bottle
    featurizer, detector = MODEL_REGISTRY[name].build(image_size=IMAGE_SIZE, random_state=0)
    estimator = detector if featurizer is None else make_pipeline(featurizer, detector)
    params = estimator.get_params()
    estimator.set_params(**{k: 1 for k in params if k.split("__")[-1] == "max_epochs"})
    estimator.set_params(**{k: "cuda" for k in params if k.split("__")[-1] == "device" and params[k] == "auto"})
    estimator.fit(train)
    scores = estimator.score_samples(test)
    assert pickled_tensor_devices(estimator) <= {"cpu"}
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    out = tmp_path / "scores.npy"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_GPU, str(path), str(out), *test],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(np.load(out), scores, rtol=1e-4, atol=1e-5)
