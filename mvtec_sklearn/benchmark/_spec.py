"""Registry entries: :class:`ModelSpec`, :func:`register_model`, :data:`MODEL_REGISTRY`.

A registry entry is split in two: an optional *featurizer* (images -> 2-D
features) and a *detector* (features, or images when there is no featurizer,
-> scores). The runner computes each featurizer's output once per category and
shares it between every detector that uses the same featurizer configuration.
The built-in entries are registered by ``_registry``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MODEL_REGISTRY", "ModelSpec", "register_model", "list_models"]


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
