"""The model registry: content of list_models, register_model, and every entry actually runs."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from mvtec_sklearn.benchmark import (
    MODEL_REGISTRY,
    ModelSpec,
    list_models,
    register_model,
    resnet_weights,
)
from mvtec_sklearn.benchmark._spec import call_factory

# LOF with n_neighbors=10 on a handful of training images warns (and uses n - 1)
pytestmark = pytest.mark.filterwarnings("ignore:n_neighbors .* is greater than:UserWarning")


def test_list_models_content():
    table = list_models()
    assert list(table.columns) == [
        "name",
        "description",
        "input",
        "weights",
        "has_anomaly_map",
        "default",
        "tags",
    ]
    assert list(table.name) == list(MODEL_REGISTRY)
    names = set(table.name)
    for detector in ("ocsvm", "iforest", "lof", "knn"):
        for features in ("pixels", "handcrafted", "resnet", "effnet"):
            assert f"{detector}-{features}" in names
    for deep in (
        "autoencoder",
        "vae",
        "gan",
        "transformer",
        "feature-autoencoder",
        "patchcore",
        "padim",
    ):
        assert deep in names
    indexed = table.set_index("name")
    assert indexed.loc["patchcore", "has_anomaly_map"] and indexed.loc["padim", "has_anomaly_map"]
    assert not indexed.loc["knn-effnet", "has_anomaly_map"]
    assert indexed.loc["iforest-pixels", "input"] == "raw pixels + PCA"
    assert (table.description.str.len() > 10).all()
    # pretrained weights are always named; random ResNet weights are labelled as such
    assert "offline" in indexed.loc["patchcore", "weights"]
    resnet_label = indexed.loc["knn-resnet", "weights"]
    assert ("RANDOM" in resnet_label) == (resnet_weights() is None)
    default = list_models(default_only=True)
    assert 3 <= len(default) < len(table) and default["default"].all()
    assert default.has_anomaly_map.any() and (~default.has_anomaly_map).any()


def test_register_model_validation(temp_register):
    spec = temp_register("test-iforest", IsolationForest, "an entry", tags=("x",))
    assert isinstance(spec, ModelSpec) and MODEL_REGISTRY["test-iforest"] is spec
    assert spec.input == "images" and spec.weights_label() == "none"
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-iforest", IsolationForest, "again")
    temp_register("test-iforest", IsolationForest, "replaced", replace=True)
    assert MODEL_REGISTRY["test-iforest"].description == "replaced"
    with pytest.raises(TypeError, match="callable"):
        register_model("test-x", "not callable", "d")
    with pytest.raises(TypeError, match="featurizer"):
        register_model("test-x", IsolationForest, "d", featurizer=3)
    with pytest.raises(ValueError, match="non-empty"):
        register_model("", IsolationForest, "d")
    assert "test-x" not in MODEL_REGISTRY


def test_call_factory_passes_accepted_arguments():
    assert call_factory(lambda: 1, image_size=8, random_state=0) == 1
    assert call_factory(lambda random_state: random_state, image_size=8, random_state=3) == 3
    assert call_factory(lambda **kw: sorted(kw), image_size=8, random_state=3) == [
        "image_size",
        "random_state",
    ]
    featurizer, detector = MODEL_REGISTRY["iforest-pixels"].build(image_size=24, random_state=5)
    assert featurizer.image_size == 24
    assert detector[-1].random_state == 5


@pytest.mark.parametrize("name", ["knn-resnet", "patchcore-resnet", "padim-resnet"])
def test_resnet_entries_are_seeded(name, monkeypatch):
    """Without cached ImageNet weights the ResNet entries start from random weights: the
    benchmark's ``random_state`` seeds them, so two runs give the same scores."""
    from mvtec_sklearn.benchmark import _registry

    monkeypatch.setattr(_registry, "resnet_weights", lambda: None)
    featurizer, detector = MODEL_REGISTRY[name].build(image_size=32, random_state=7)
    model = featurizer if featurizer is not None else detector
    assert model.weights is None
    assert model.random_state == 7


@pytest.mark.slow
def test_every_registry_entry_runs(tiny_root, monkeypatch):
    """Each registered model fits and scores on a tiny dataset (32 px, both 1- and 3-channel).

    The deep detectors train for 2 epochs only: this checks that every entry runs, not its accuracy.
    """
    from mvtec_sklearn.benchmark import _registry, run_benchmark

    monkeypatch.setattr(_registry, "DEEP_MAX_EPOCHS", 2)
    monkeypatch.setattr(_registry, "FEATUREMAP_MAX_EPOCHS", 2)
    monkeypatch.setattr(_registry, "FEATURE_MAX_EPOCHS", 2)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # tiny networks: one thread is fastest, and pytest -n 2 shares the CPUs
    try:
        results = run_benchmark(
            tiny_root, models="all", image_size=32, metrics=["image_auroc", "pixel_auroc"]
        )
    finally:
        torch.set_num_threads(threads)
    failed = results[results.status != "ok"]
    assert failed.empty, failed[["category", "model", "error"]].to_string()
    assert len(results) == 2 * len(MODEL_REGISTRY)
    has_map = results.model.map(lambda m: MODEL_REGISTRY[m].has_anomaly_map)
    assert results.loc[has_map, "pixel_auroc"].notna().all()
    assert np.isfinite(results.image_auroc).all()
