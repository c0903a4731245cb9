"""Property test of the input contract: loaders and every registry estimator.

Random valid and invalid image arrays, image files, paths and masks go to
the loaders and to every registry model (fitted once on a tiny dataset). The
answer is always either a documented exception (``ValueError`` or
``FileNotFoundError`` with a message) or finite scores of the right shape,
and the dataset folder is never changed.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mvtec_sklearn.benchmark import MODEL_REGISTRY
from mvtec_sklearn.datasets import load_images, load_mvtec, make_mvtec_like, read_mask

DOCUMENTED = (ValueError, FileNotFoundError)
MODES = ("L", "RGB", "RGBA", "I;16")


def _snapshot(folder):
    state = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            st_ = os.lstat(os.path.join(dirpath, name))
            state[os.path.relpath(os.path.join(dirpath, name), folder)] = (
                st_.st_size, st_.st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Every registry model fitted on 6 images of 32 px (1 epoch for the deep ones)."""
    import torch
    from sklearn.pipeline import make_pipeline

    from mvtec_sklearn.benchmark import _registry

    root = make_mvtec_like(tmp_path_factory.mktemp("prop_data"), categories=["bottle"],
                           n_train=6, n_test_good=1, n_test_defect=2, image_size=32,
                           random_state=0)
    train = load_mvtec(root, "bottle").paths
    models = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mp.setattr(_registry, "DEEP_MAX_EPOCHS", 1)
            mp.setattr(_registry, "FEATUREMAP_MAX_EPOCHS", 1)
            mp.setattr(_registry, "FEATURE_MAX_EPOCHS", 1)
            for name, spec in MODEL_REGISTRY.items():
                featurizer, detector = spec.build(image_size=32, random_state=0)
                est = detector if featurizer is None else make_pipeline(featurizer, detector)
                models[name] = est.fit(train)
    finally:
        torch.set_num_threads(threads)
    return str(root), models, _snapshot(root)


def _write(folder, array, mode, ext):
    path = os.path.join(folder, f"img{len(os.listdir(folder))}.{ext}")
    Image.fromarray(array.astype(np.uint16) * 257 if mode == "I;16" else array).convert(
        mode if mode != "I;16" else "I;16").save(path)
    return path


@st.composite
def image_arrays(draw, valid=True):
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(16, 40)), draw(st.integers(16, 40))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.uniform(size=shape).astype(draw(st.sampled_from([np.float32, np.float64])))


def invalid_inputs(folder):
    """Inputs that break the contract; each must raise a documented error."""
    rng = np.random.default_rng(0)
    corrupt = os.path.join(folder, "corrupt.png")
    with open(corrupt, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n not really")
    return st.sampled_from([
        [],
        np.zeros((0, 8, 8, 3)),
        [os.path.join(folder, "missing.png")],
        [corrupt],
        corrupt,
        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),   # one image, no batch axis
        rng.integers(0, 256, (32, 32), dtype=np.uint8),      # 2-D
        np.zeros((1, 2, 16, 16, 3)),                         # 5-D
        np.full((2, 16, 16, 3), 1.5),                        # float out of [0, 1]
        np.full((2, 16, 16, 3), np.nan),
        np.full((2, 16, 16), -1, dtype=np.int16),
        np.zeros((2, 16, 16, 2)),                            # 2 channels
        np.array([[1, 2], [3]], dtype=object),
    ])


def _check_scores(est, X, n):
    try:
        scores = np.asarray(est.score_samples(X))
    except DOCUMENTED as exc:
        assert str(exc)
        return False
    assert scores.shape == (n,) and np.isfinite(scores).all()
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_registry_estimators_answer_or_raise_documented_errors(fitted, tmp_path_factory, data):
    root, models, before = fitted
    name = data.draw(st.sampled_from(sorted(models)), label="model")
    est = models[name]
    folder = str(tmp_path_factory.mktemp("inputs"))
    kind = data.draw(st.sampled_from(["array", "files", "dataset", "invalid"]), label="kind")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "array":
            X = data.draw(image_arrays())
            assert _check_scores(est, X, len(X)), name
        elif kind == "files":
            arrays = data.draw(st.lists(image_arrays(), min_size=1, max_size=2))
            mode = data.draw(st.sampled_from(MODES))
            ext = data.draw(st.sampled_from(["png", "tif"] if mode == "I;16" else
                                            ["png", "bmp", "jpg", "tif"]))
            if mode == "RGBA" and ext in ("jpg", "bmp"):
                ext = "png"
            paths = [_write(folder, (a[0] * (255 if a.dtype.kind == "f" else 1)).astype(np.uint8)
                            if a.ndim == 3 else
                            (a[0, ..., 0] * (255 if a.dtype.kind == "f" else 1)).astype(np.uint8),
                            mode, ext) for a in arrays]
            _check_scores(est, paths, len(paths))  # images of different sizes may be refused
        elif kind == "dataset":
            paths = load_mvtec(root, "bottle", split="test").paths
            assert _check_scores(est, paths, len(paths)), name
        else:
            X = data.draw(invalid_inputs(folder))
            with pytest.raises(DOCUMENTED, match=r"\S"):
                est.score_samples(X)
    assert _snapshot(root) == before


@settings(max_examples=60, deadline=None)
@given(X=image_arrays())
def test_load_images_of_valid_arrays(X):
    out = load_images(X)
    channels = 1 if X.ndim == 3 else min(X.shape[-1], 3)
    assert out.shape == (*X.shape[:3], channels) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_load_images_of_invalid_input(tmp_path_factory, data):
    X = data.draw(invalid_inputs(str(tmp_path_factory.mktemp("bad"))))
    with pytest.raises(DOCUMENTED, match=r"\S"):
        load_images(X)


@settings(max_examples=40, deadline=None)
@given(
    mask=st.integers(0, 2**16).map(
        lambda s: np.random.default_rng(s).integers(0, 3, (24, 20)) * (s % 5)),
    deep=st.booleans(),
)
def test_read_mask_keeps_every_non_zero_pixel(tmp_path_factory, mask, deep):
    path = os.path.join(str(tmp_path_factory.mktemp("mask")), "m.png")
    Image.fromarray(mask.astype(np.uint16 if deep else np.uint8)).save(path)
    np.testing.assert_array_equal(read_mask(path), mask > 0)
    assert read_mask(path, size=(12, 10)).any() == (mask > 0).any()
