"""TorchScript / ONNX export: scores and maps match the estimator within 1e-4."""

import numpy as np
import pytest
from sklearn.covariance import EllipticEnvelope
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from mvtec_sklearn.deploy import ExportedDetector, export_onnx, export_torchscript, load_model
from mvtec_sklearn.detectors import (
    FeatureAutoencoderDetector,
    FeatureVAEDetector,
    KNNDetector,
    PaDiMDetector,
    PatchCoreDetector,
)
from mvtec_sklearn.features import DeepFeaturizer
from mvtec_sklearn.model_selection import CalibratedThresholdDetector

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)
X_TRAIN = RNG.uniform(size=(12, 32, 32, 3)).astype(np.float32)
X_TEST = RNG.uniform(size=(5, 32, 32, 3)).astype(np.float32)
X_OTHER_SIZE = RNG.uniform(size=(3, 40, 48, 3)).astype(np.float32)


def _models():
    return {
        "padim": PaDiMDetector(weights=None, image_size=32, n_features=10, device="cpu",
                               random_state=0),
        "patchcore": PatchCoreDetector(backbone="resnet18", weights=None, image_size=32,
                                       coreset_ratio=0.5, n_neighbors=3, embedding_dim=64,
                                       device="cpu", random_state=0),
        "knn": make_pipeline(_featurizer(), StandardScaler(), PCA(5),
                             KNNDetector(n_neighbors=2, device="cpu")),
        # nested as the registry builds them: featurizer, then (preprocessing, detector)
        "ocsvm": make_pipeline(_featurizer(), make_pipeline(StandardScaler(), OneClassSVM(nu=0.2))),
        "lof": make_pipeline(_featurizer(), PCA(6), LocalOutlierFactor(n_neighbors=4, novelty=True)),
        "iforest": make_pipeline(_featurizer(), StandardScaler(),
                                 IsolationForest(n_estimators=30, max_features=0.5, random_state=0)),
        "feature-autoencoder": make_pipeline(_featurizer(), FeatureAutoencoderDetector(
            hidden_sizes=(16,), latent_dim=4, max_epochs=2, device="cpu", random_state=0)),
        "feature-vae": make_pipeline(_featurizer(), PCA(8), FeatureVAEDetector(
            hidden_sizes=(16,), latent_dim=4, max_epochs=2, device="cpu", random_state=0)),
    }


def _featurizer():
    return DeepFeaturizer(weights=None, image_size=32, device="cpu", random_state=0)


_PIPELINES = ["knn", "ocsvm", "lof", "iforest", "feature-autoencoder", "feature-vae"]


@pytest.fixture(scope="module")
def fitted():
    return {name: model.fit(X_TRAIN) for name, model in _models().items()}


@pytest.mark.parametrize("name", ["padim", "patchcore", *_PIPELINES])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_scores_and_maps_match(fitted, name, fmt, tmp_path):
    model = fitted[name]
    path = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    meta = (export_onnx if fmt == "onnx" else export_torchscript)(model, path)
    exported = load_model(path)
    assert isinstance(exported, ExportedDetector)
    assert meta["image_size"] == [32, 32] and exported.metadata == meta
    if name in ("padim", "patchcore", "knn"):
        assert exported.threshold_ == pytest.approx(-(model[-1] if name == "knn" else model).offset_)
    for X in (X_TEST, X_OTHER_SIZE):
        np.testing.assert_allclose(exported.score_samples(X), model.score_samples(X), atol=1e-4)
        if name in _PIPELINES:
            assert not hasattr(exported, "anomaly_map")
        else:
            scores, maps = exported.score_samples_and_anomaly_map(X)
            assert maps.shape == (len(X), *X.shape[1:3])
            np.testing.assert_allclose(maps, model.anomaly_map(X), atol=1e-4)
            np.testing.assert_allclose(scores, model.score_samples(X), atol=1e-4)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("method", ["mean", "max"])
def test_knn_head_scores_as_the_detector_for_every_exportable_metric(metric, method):
    import torch

    from mvtec_sklearn.deploy._heads import head_for

    rng = np.random.default_rng(1)
    X, queries = rng.normal(size=(30, 4)), rng.normal(size=(7, 4))
    det = KNNDetector(n_neighbors=3, method=method, metric=metric, device="cpu").fit(X)
    head = head_for(det, 4)
    scores = torch.jit.trace(head, torch.from_numpy(queries))(torch.from_numpy(queries))
    np.testing.assert_allclose(scores.numpy(), -det.score_samples(queries), rtol=1e-5, atol=1e-6)


def test_export_keeps_calibrated_thresholds_and_refuses_others(tmp_path):
    det = CalibratedThresholdDetector(
        PaDiMDetector(weights=None, image_size=32, n_features=10, device="cpu", random_state=0),
        pixel_method="fpr", calibration_fraction=0.25, random_state=0).fit(X_TRAIN)
    meta = export_torchscript(det, tmp_path / "m.pt")
    assert meta["threshold"] == det.threshold_ and meta["pixel_threshold"] == det.pixel_threshold_
    exported = load_model(tmp_path / "m.pt")
    np.testing.assert_allclose(exported.score_samples(X_TEST), det.score_samples(X_TEST), atol=1e-4)
    with pytest.raises(ValueError, match="Cannot export KNNDetector"):
        export_onnx(KNNDetector(n_neighbors=2, device="cpu").fit(np.zeros((5, 2))), tmp_path / "k.onnx")


@pytest.mark.parametrize(("detector", "named"), [
    (OneClassSVM(kernel="linear"), r"OneClassSVM \(kernel='linear'\)"),
    (LocalOutlierFactor(n_neighbors=3, novelty=True, metric="manhattan"), "LocalOutlierFactor"),
    (EllipticEnvelope(support_fraction=1.0), "EllipticEnvelope"),
])
def test_unexportable_detector_is_named_and_the_exportable_ones_listed(detector, named, tmp_path):
    pipe = make_pipeline(_featurizer(), PCA(3), detector).fit(X_TRAIN)
    with pytest.raises(ValueError, match=named) as info:
        export_torchscript(pipe, tmp_path / "m.pt")
    for exportable in ("KNNDetector", "OneClassSVM", "LocalOutlierFactor", "IsolationForest",
                       "FeatureAutoencoderDetector", "FeatureVAEDetector"):
        assert exportable in str(info.value)
