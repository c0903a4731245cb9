"""Planning of a benchmark run: which models on which categories, which jobs, which shared features.

The inputs of :func:`~mvtec_sklearn.benchmark.run_benchmark` are resolved into a
:class:`_Request`; :func:`_plan` turns it into a :class:`_Plan`: the jobs still
to run, the featurizer configurations they share (computed once per category),
the rows of jobs a previous run already finished and those of models that
could not be built.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import traceback
from dataclasses import dataclass, field

from ._cache import FeatureCache, stable_repr
from ._jobs import _CategoryData, _Job
from ._results import METRICS, _error_summary
from ._spec import MODEL_REGISTRY, ModelSpec

#: Keyword arguments of :func:`mvtec_sklearn.datasets.photos_root` for ``root=None``
#: (``dataset="photos"``, the default).
PHOTO_DATASET = {"n_train": 30, "n_test_good": 10, "n_test_defect": 20}

#: Keyword arguments of :func:`mvtec_sklearn.datasets.synthetic_root` for ``root=None``
#: with ``dataset="synthetic"``.
SYNTHETIC_DATASET = {"n_train": 30, "n_test_good": 10, "n_test_defect": 20}

#: The built-in datasets ``run_benchmark(dataset=...)`` generates (once) when ``root`` is None.
DATASETS = ("photos", "synthetic")


@dataclass
class _Model:
    name: str
    spec: ModelSpec | None = None
    estimator: object = None

    def build(self, image_size, random_state):
        if self.spec is not None:
            return self.spec.build(image_size=image_size, random_state=random_state)
        from sklearn.base import clone

        return None, _seeded(clone(self.estimator), random_state)

    @property
    def input(self):
        return self.spec.input if self.spec is not None else "images"

    @property
    def weights(self):
        return self.spec.weights_label() if self.spec is not None else "user-defined"


def _seeded(estimator, seed):
    """Set every ``random_state`` parameter of ``estimator`` (nested ones too) to ``seed``."""
    keys = [k for k in estimator.get_params(deep=True) if k.split("__")[-1] == "random_state"]
    return estimator.set_params(**{k: seed for k in keys}) if keys else estimator


def _has_seed(*estimators):
    """Whether any of the estimators has a ``random_state`` parameter (a stochastic model)."""
    return any(k.split("__")[-1] == "random_state"
               for e in estimators if e is not None for k in e.get_params(deep=True))


def _resolve_models(models):
    if models is None:
        models = [name for name, spec in MODEL_REGISTRY.items() if spec.default]
    elif isinstance(models, str):
        models = list(MODEL_REGISTRY) if models == "all" else [models]
    elif isinstance(models, dict):
        models = list(models.items())
    resolved = []
    for item in models:
        if isinstance(item, str):
            if item == "all":
                resolved.extend(_Model(n, spec=s) for n, s in MODEL_REGISTRY.items())
                continue
            if item not in MODEL_REGISTRY:
                raise ValueError(
                    f"Unknown model {item!r}. Registered models: {sorted(MODEL_REGISTRY)} "
                    "(see `mvtec-sklearn models`), or pass (name, estimator) pairs."
                )
            resolved.append(_Model(item, spec=MODEL_REGISTRY[item]))
        elif isinstance(item, ModelSpec):
            resolved.append(_Model(item.name, spec=item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, estimator = item
            if not (hasattr(estimator, "fit") and hasattr(estimator, "score_samples")):
                raise TypeError(
                    f"Model {name!r}: the estimator must have fit and score_samples, "
                    f"got {type(estimator).__name__}."
                )
            resolved.append(_Model(name, estimator=estimator))
        else:
            raise TypeError(
                "models must be None, 'all', registry names, a dict name -> estimator or "
                "(name, estimator) "
                f"pairs; got {item!r}."
            )
    names = [m.name for m in resolved]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"Model names must be unique; repeated: {duplicated}.")
    if not resolved:
        raise ValueError("No model to run.")
    return resolved


def _resolve_metrics(metrics):
    if metrics is None:
        return list(METRICS)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; choose among {list(METRICS)}.")
    return metrics


def _resolve_root(root, dataset):
    from mvtec_sklearn.datasets import photos_root, synthetic_root

    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)} or None; got {dataset!r}.")
    if root is None:
        if dataset == "synthetic":
            return os.path.abspath(synthetic_root(**SYNTHETIC_DATASET))
        return os.path.abspath(photos_root(**PHOTO_DATASET))
    if dataset is not None:
        raise ValueError(
            f"Pass either root or dataset, not both (root={os.fspath(root)!r}, "
            f"dataset={dataset!r})."
        )
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Dataset root {root!r} does not exist.")
    return root


def _resolve_categories(root, categories):
    from mvtec_sklearn.datasets import list_categories

    available = list(list_categories(root))
    if categories is None:
        if not available:
            raise ValueError(f"No MVTec AD category folder found under {root!r}.")
        return available
    categories = [categories] if isinstance(categories, str) else list(categories)
    missing = [c for c in categories if c not in available]
    if missing:
        raise ValueError(f"Categories {missing} not found under {root!r}; available: {available}.")
    return categories


def _config_id(model, featurizer, detector, image_size, random_state, root, category):
    """Hash of everything that determines a job's result (a rerun with the same id is skipped)."""
    text = "|".join(
        [
            model.name,
            stable_repr(featurizer),
            stable_repr(detector),
            repr(image_size),
            repr(random_state),
            root,
            category,
        ]
    )
    return hashlib.sha1(text.encode()).hexdigest()[:12]

@dataclass
class _Request:
    """The resolved inputs of one run: every (category, model, seed) it asks for."""

    root: str
    models: list
    categories: list
    seeds: list
    metrics: list
    image_size: int | None = None
    n_bootstrap: int = 0

    @classmethod
    def resolve(
        cls, *, root, dataset, categories, models, metrics, image_size, random_state, seeds,
        n_bootstrap,
    ):
        """Check the arguments of ``run_benchmark`` and resolve names into a request.

        Raises ``ValueError`` (``FileNotFoundError`` for a missing ``root``,
        ``TypeError`` for a model that is no estimator) naming the bad argument.
        """
        if int(seeds) < 1 or int(n_bootstrap) < 0:
            raise ValueError(
                f"seeds must be >= 1 and n_bootstrap >= 0; got {seeds} and {n_bootstrap}."
            )
        metric_list = _resolve_metrics(metrics)
        model_list = _resolve_models(models)
        root_dir = _resolve_root(root, dataset)
        return cls(
            root=root_dir,
            models=model_list,
            categories=_resolve_categories(root_dir, categories),
            seeds=[random_state + i for i in range(int(seeds))],
            metrics=metric_list,
            image_size=image_size,
            n_bootstrap=int(n_bootstrap),
        )


@dataclass
class _FeatureGroup:
    """One featurizer configuration of one category, shared by every job that uses it."""

    featurizer: object
    category: str
    input: str
    train_paths: list
    test_paths: list


@dataclass
class _Plan:
    """What a run has to do, and what a previous run already did.

    ``jobs`` pairs each pending :class:`_Job` (with its category's
    :class:`_CategoryData`) with the key of its :class:`_FeatureGroup` (None
    for a model on images); ``build_errors`` holds
    ``(row, traceback)`` of the models whose factory failed; ``finished`` maps
    ``(category, model, seed)`` to the rows finished by a previous run.
    """

    jobs: list = field(default_factory=list)
    feature_groups: dict = field(default_factory=dict)
    build_errors: list = field(default_factory=list)
    finished: dict = field(default_factory=dict)

    @property
    def total(self):
        """Number of rows this run still has to write."""
        return len(self.jobs) + len(self.build_errors)


def _base_row(request, model, cdata, random_state):
    """The columns of a job's row known before it runs."""
    return {
        "category": cdata.category,
        "model": model.name,
        "input": model.input,
        "weights": model.weights,
        "image_size": request.image_size,
        "random_state": random_state,
        "n_train": len(cdata.train_paths),
        "n_test": len(cdata.test_paths),
        "n_test_anomalous": int(cdata.target.sum()),
        "features_cached": False,
    }


def _plan(request, finished, n_threads=None):
    """Build the pending jobs, the featurizers they need and the rows of unbuildable models.

    ``finished`` maps ``(category, model, config_id)`` to the successful rows of
    a previous run; those jobs are not run again. A model runs once per seed of
    ``request.seeds`` when it has a ``random_state`` parameter, else once (with
    the first seed). Each job gets ``n_threads`` torch threads.
    """
    plan = _Plan()
    root, image_size, first_seed = request.root, request.image_size, request.seeds[0]
    for category in request.categories:
        cdata = _CategoryData.load(root, category)
        for model, random_state in ((m, s) for m in request.models for s in request.seeds):
            base = _base_row(request, model, cdata, random_state)
            try:
                featurizer, detector = model.build(image_size, random_state)
            except Exception as exc:
                base.update(
                    status="error",
                    error=f"could not build the model: {_error_summary(exc)}",
                    config_id=_config_id(
                        model, None, None, image_size, random_state, root, category
                    ),
                    finished_at=_dt.datetime.now().isoformat(timespec="seconds"),
                )
                if random_state == first_seed:
                    plan.build_errors.append((base, traceback.format_exc()))
                continue
            if random_state != first_seed and not _has_seed(featurizer, detector):
                continue  # deterministic: one run is enough
            base["config_id"] = _config_id(
                model, featurizer, detector, image_size, random_state, root, category
            )
            done = finished.get((category, model.name, base["config_id"]))
            if done is not None:
                plan.finished[(category, model.name, random_state)] = done
                continue
            key = None
            if featurizer is not None:
                key = FeatureCache.key(
                    featurizer, {"train": cdata.train_paths, "test": cdata.test_paths}, image_size
                )
                plan.feature_groups.setdefault(
                    key,
                    _FeatureGroup(
                        featurizer, category, model.input, cdata.train_paths, cdata.test_paths
                    ),
                )
            job = _Job(
                category=category,
                model=model.name,
                detector=detector,
                data=cdata,
                metrics=request.metrics,
                n_threads=n_threads,
                base_row=base,
                n_bootstrap=int(request.n_bootstrap),
                seed=None if random_state == first_seed else random_state,
            )
            plan.jobs.append((job, key))
    return plan
