"""The shared torch training base, exercised through the deep detectors."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from mvtec_sklearn.detectors import (
    AutoencoderDetector,
    FeatureAutoencoderDetector,
    FeatureMapAutoencoderDetector,
    FeatureVAEDetector,
    GANDetector,
    TransformerDetector,
    VAEDetector,
)
from mvtec_sklearn.detectors._nn._functional import augment_images, gaussian_blur, ssim_map


def _blobs(n, size=32, seed=0):
    """Smooth RGB blob images in [0, 1] (the normal class)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(size / 4, 3 * size / 4, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (size * 1.2))
        img = np.stack([blob, 0.5 * blob + 0.3, 1 - blob], axis=-1) * 0.8
        out.append(np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1))
    return np.asarray(out, dtype=np.float32)


def _vectors(n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    return np.c_[z, z @ [[1.0, -0.5], [0.3, 2.0]], rng.normal(0, 0.05, size=(n, 2))]


TINY_IMAGE = {
    "ae": AutoencoderDetector(image_size=32, base_channels=4, depth=2, latent_channels=4),
    "vae": VAEDetector(image_size=32, base_channels=4, depth=2, latent_dim=4),
    "gan": GANDetector(image_size=32, base_channels=4, latent_dim=8),
    "gan_skip": GANDetector(architecture="skip", image_size=32, base_channels=4, latent_dim=8),
    "gan_spatial": GANDetector(bottleneck="spatial", image_size=32, base_channels=4),
    "transformer": TransformerDetector(image_size=32, patch_size=8, dim=16, depth=1, heads=2),
}
TINY_VECTOR = {
    "feature_ae": FeatureAutoencoderDetector(hidden_sizes=(16,), latent_dim=2),
    "feature_vae": FeatureVAEDetector(hidden_sizes=(16,), latent_dim=2),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images():
    return _blobs(16)


@pytest.mark.parametrize("name", sorted(TINY_IMAGE) + sorted(TINY_VECTOR))
def test_training_reduces_the_loss(name, images):
    if name in TINY_IMAGE:
        est = clone(TINY_IMAGE[name]).set_params(max_epochs=6, validation_fraction=None)
        X = images
    else:
        est = clone(TINY_VECTOR[name]).set_params(max_epochs=30, validation_fraction=None)
        X = _vectors(200)
    est.set_params(random_state=0, learning_rate=3e-3).fit(X)
    hist = est.history_
    assert list(hist.columns[:3]) == ["epoch", "train_loss", "val_loss"]
    assert hist["epoch"].tolist() == list(range(1, 1 + len(hist)))
    assert est.n_epochs_ == len(hist) == est.best_epoch_
    assert hist["val_loss"].isna().all()
    column = "train_contextual" if name.startswith("gan") else "train_loss"
    assert hist[column].iloc[-1] < 0.9 * hist[column].iloc[0]


def test_early_stopping_stops_and_restores_the_best_weights():
    X = _vectors(120)
    est = FeatureAutoencoderDetector(
        hidden_sizes=(16,), latent_dim=1, max_epochs=400, patience=3, learning_rate=0.03,
        validation_fraction=0.25, random_state=0,
    ).fit(X)
    hist = est.history_
    assert est.n_epochs_ < 400
    assert est.n_epochs_ == est.best_epoch_ + 3
    assert int(hist["val_loss"].idxmin()) + 1 == est.best_epoch_
    assert hist["val_loss"].notna().all()
    # Training exactly best_epoch_ epochs with the same seed gives the restored weights.
    ref = clone(est).set_params(max_epochs=est.best_epoch_, patience=10_000).fit(X)
    np.testing.assert_allclose(est.score_samples(X), ref.score_samples(X), rtol=1e-12)


def test_same_seed_same_scores_other_seed_other_scores(images):
    est = clone(TINY_IMAGE["ae"]).set_params(max_epochs=2)
    a = clone(est).set_params(random_state=1).fit(images).score_samples(images)
    b = clone(est).set_params(random_state=1).fit(images).score_samples(images)
    c = clone(est).set_params(random_state=2).fit(images).score_samples(images)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_the_global_torch_generator_alone(images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clone(TINY_IMAGE["transformer"]).set_params(max_epochs=1, random_state=0).fit(images)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_too_few_samples_for_the_validation_split(images):
    with pytest.raises(ValueError, match=r"validation_fraction=0.5.*n_samples=1"):
        clone(TINY_IMAGE["ae"]).set_params(validation_fraction=0.5).fit(images[:1])
    with pytest.raises(ValueError, match="n_samples=1"):
        FeatureAutoencoderDetector().fit(np.zeros((1, 3)))
    # Without a validation split a single sample is enough.
    est = clone(TINY_IMAGE["ae"]).set_params(validation_fraction=None, max_epochs=1)
    assert est.fit(images[:1]).n_epochs_ == 1


def test_wrong_image_size_at_predict(images):
    est = clone(TINY_IMAGE["ae"]).set_params(image_size=None, max_epochs=1).fit(images)
    assert est.image_shape_ == (32, 32)
    bigger = np.zeros((2, 48, 48, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"fitted on images of size \(32, 32\).*\(48, 48\)"):
        est.score_samples(bigger)
    with pytest.raises(ValueError, match="size"):
        est.anomaly_map(bigger)
    # With an image_size, any size is resized; maps come back at the input size.
    est = clone(TINY_IMAGE["ae"]).set_params(max_epochs=1).fit(images)
    assert est.anomaly_map(bigger).shape == (2, 48, 48)


@pytest.mark.parametrize(
    "est, match",
    [
        (AutoencoderDetector(image_size=36, depth=3), "divisible by 8"),
        (GANDetector(image_size=48), "power of two"),
        (GANDetector(architecture="unet"), "architecture"),
        (GANDetector(architecture="skip", bottleneck="spatial"), "bottleneck='spatial'"),
        (TransformerDetector(image_size=32, patch_size=6), "divisible by 6"),
        (TransformerDetector(image_size=32, dim=10, heads=4), "heads=4 must divide dim=10"),
        (TransformerDetector(tokens="features", augment="flip"), "augment"),
        (AutoencoderDetector(augment="rotate"), "augment"),
    ],
)
def test_invalid_configurations_raise(est, match, images):
    with pytest.raises(ValueError, match=match):
        est.set_params(max_epochs=1).fit(images)


def test_grayscale_model_accepts_rgb_at_predict(images):
    gray = images.mean(axis=-1)
    est = clone(TINY_IMAGE["ae"]).set_params(max_epochs=1, random_state=0).fit(gray)
    assert est.n_channels_ == 1
    assert est.score_samples(images).shape == (len(images),)


def test_pickle_stores_cpu_weights_and_eval_mode(images):
    est = clone(TINY_IMAGE["vae"]).set_params(max_epochs=1, random_state=0).fit(images)
    state = est.__getstate__()
    assert isinstance(state["module_"], dict)
    assert all(t.device.type == "cpu" for t in state["module_"].values())
    restored = pickle.loads(pickle.dumps(est))
    assert not restored.module_.training
    np.testing.assert_array_equal(restored.score_samples(images), est.score_samples(images))
    assert not est.module_.training


def test_cuda_requested_without_cuda_raises(images):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        clone(TINY_IMAGE["ae"]).set_params(device="cuda", max_epochs=1).fit(images)


def test_verbose_shows_losses(images, capsys):
    clone(TINY_IMAGE["ae"]).set_params(max_epochs=2, verbose=True, random_state=0).fit(images)
    err = capsys.readouterr().err
    assert "AutoencoderDetector" in err and "train_loss" in err and "val_loss" in err


def test_augmentation(images):
    batch = torch.from_numpy(images[:8].transpose(0, 3, 1, 2))
    torch.manual_seed(0)
    flipped = augment_images(batch, "flip")
    # Every image is itself, or flipped horizontally and/or vertically.
    for x, y in zip(batch, flipped):
        assert any(torch.equal(y, c) for c in (x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)))
    jittered = augment_images(batch, "default")
    assert jittered.shape == batch.shape
    assert 0.0 <= float(jittered.min()) and float(jittered.max()) <= 1.0
    assert not torch.allclose(jittered, batch)

    calls = []

    def invert(b):
        calls.append(b.shape)
        return 1.0 - b

    est = clone(TINY_IMAGE["ae"]).set_params(max_epochs=1, augment=invert, batch_size=8)
    est.set_params(validation_fraction=None).fit(images)
    assert len(calls) == 2 and calls[0] == (8, 3, 32, 32)
    est.set_params(augment="default", random_state=0).fit(images)
    with pytest.raises(ValueError, match="same|shape"):
        est.set_params(augment=lambda b: b[:, :1]).fit(images)


def test_functional_helpers():
    x = torch.rand(2, 3, 16, 16)
    np.testing.assert_allclose(ssim_map(x, x).numpy(), 1.0, atol=1e-5)
    assert float(ssim_map(x, torch.rand(2, 3, 16, 16)).mean()) < 0.5
    maps = torch.zeros(1, 32, 32)
    maps[0, 16, 16] = 1.0
    blurred = gaussian_blur(maps, 2.0)
    assert blurred.shape == maps.shape
    np.testing.assert_allclose(float(blurred.sum()), 1.0, rtol=1e-5)
    assert float(blurred[0, 16, 16]) == float(blurred.max()) < 0.1
    assert gaussian_blur(maps, 0) is maps


def test_one_torch_thread_fixture_sets_one_thread():
    # the module runs under the one_torch_thread fixture (conftest.py)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    "cls",
    [AutoencoderDetector, FeatureAutoencoderDetector, FeatureVAEDetector, GANDetector,
     TransformerDetector, VAEDetector],
)
def test_training_parameters_are_documented_with_the_class_defaults(cls):
    defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items()}
    assert "{training}" not in cls.__doc__
    for name, kind in [("max_epochs", "int"), ("batch_size", "int"), ("learning_rate", "float"),
                       ("weight_decay", "float"), ("patience", "int")]:
        assert f"    {name} : {kind}, default={defaults[name]}\n" in cls.__doc__


def test_training_docstring_block_is_filled_for_any_subclass():
    from mvtec_sklearn.detectors._torch_base import BaseTorchDetector

    class Tiny(BaseTorchDetector):
        """Tiny.

        Parameters
        ----------
        {training}
        """

        def __init__(self, *, max_epochs=7, batch_size=3, learning_rate=0.5, weight_decay=0.25,
                     validation_fraction=None, patience=2):
            pass

    assert "max_epochs : int, default=7\n" in Tiny.__doc__
    assert "learning_rate : float, default=0.5\n" in Tiny.__doc__
    assert "validation_fraction : float in [0, 1) or None, default=None\n" in Tiny.__doc__
    assert "{training}" not in Tiny.__doc__


@pytest.mark.parametrize(
    "cls, input_attrs",
    [
        (AutoencoderDetector, ["n_channels_", "image_shape_"]),
        (FeatureAutoencoderDetector, ["n_features_in_", "feature_names_in_", "mean_, scale_"]),
        (FeatureMapAutoencoderDetector, ["featurizer_", "feature_shape_", "map_shape_"]),
        (FeatureVAEDetector, ["n_features_in_", "feature_names_in_", "mean_, scale_"]),
        (GANDetector, ["n_channels_", "image_shape_"]),
        (TransformerDetector, ["grid_shape_", "token_dim_", "featurizer_", "error_mean_"]),
        (VAEDetector, ["n_channels_", "image_shape_"]),
    ],
)
def test_fitted_attributes_are_documented_once_with_those_of_the_input(cls, input_attrs):
    doc = cls.__doc__
    assert "{fitted}" not in doc and "{training}" not in doc
    attributes = doc[doc.index("Attributes\n"):doc.index("Examples\n")]
    entries = [line.strip().split(" : ")[0] for line in attributes.splitlines()
               if line.startswith("    ") and not line.startswith("     ") and " : " in line]
    assert entries[:3] == ["module_", "history_", "n_epochs_, best_epoch_"]
    assert entries[-1] == "offset_"
    for name in input_attrs:
        assert any(entry.startswith(name) for entry in entries[3:-1]), name
    assert '    contamination : "auto" or float in (0, 0.5], default="auto"\n' in doc


def test_fitted_docstring_block_takes_the_input_mixins_attributes():
    from mvtec_sklearn.detectors._torch_base import BaseTorchDetector
    from mvtec_sklearn.detectors._torch_inputs import VectorInputMixin

    class Tiny(VectorInputMixin, BaseTorchDetector):
        """Tiny.

        Attributes
        ----------
        {fitted}
        """

    assert "{fitted}" not in Tiny.__doc__
    assert "    n_epochs_, best_epoch_ : int\n" in Tiny.__doc__
    assert "mean_, scale_ : ndarray of shape (n_features,)\n" in Tiny.__doc__
    assert Tiny.__doc__.rstrip().endswith("Threshold on ``score_samples`` (see ``contamination``).")
