"""The benchmark runner: every category x every model, resumable, in parallel."""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import io
import os
import re
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mvtec_sklearn.utils import atomic_write, check_outside_dataset, remove_stale_temporaries
from mvtec_sklearn.utils import safe_filename as slug

from ._cache import FeatureCache, stable_repr
from ._registry import MODEL_REGISTRY, ModelSpec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dask.distributed import Client

__all__ = ["run_benchmark", "load_results", "load_scores", "RESULT_COLUMNS", "METRICS"]

#: Metrics the benchmark can compute; the pixel ones only for models with anomaly maps.
METRICS = ("image_auroc", "aupr", "f1_max", "pixel_auroc", "aupro")
PIXEL_METRICS = ("pixel_auroc", "aupro")
#: Metrics that get a bootstrap 95 % confidence interval (columns ``<metric>_low/_high``).
CI_METRICS = ("image_auroc", "pixel_auroc", "aupro")

#: Columns of ``results.csv`` and of the DataFrame :func:`run_benchmark` returns.
RESULT_COLUMNS = [
    "category",
    "model",
    "status",
    *METRICS,
    *(f"{m}_{end}" for m in CI_METRICS for end in ("low", "high")),
    "fit_seconds",
    "predict_seconds",
    "map_seconds",
    "feature_seconds",
    "features_cached",
    "n_train",
    "n_test",
    "n_test_anomalous",
    "input",
    "weights",
    "image_size",
    "random_state",
    "config_id",
    "error",
    "finished_at",
]

#: Images per row of the anomaly-map figures: the top-scored test images and the
#: worst-missed defective ones (:func:`mvtec_sklearn.plotting.plot_anomaly_grid`).
N_OVERLAY = 4

#: Keyword arguments of :func:`mvtec_sklearn.datasets.photos_root` for ``root=None``
#: (``dataset="photos"``, the default).
PHOTO_DATASET = {"n_train": 30, "n_test_good": 10, "n_test_defect": 20}

#: Keyword arguments of :func:`mvtec_sklearn.datasets.synthetic_root` for ``root=None``
#: with ``dataset="synthetic"``.
SYNTHETIC_DATASET = {"n_train": 30, "n_test_good": 10, "n_test_defect": 20}

#: The built-in datasets ``run_benchmark(dataset=...)`` generates (once) when ``root`` is None.
DATASETS = ("photos", "synthetic")


def _job_stem(category, model, seed=None):
    """File stem of a job's outputs; repeats with another seed (``--seeds``) get a suffix."""
    stem = f"{slug(category)}__{slug(model)}"
    return stem if seed is None else f"{stem}__seed{seed}"


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


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


@dataclass
class _CategoryData:
    category: str
    train_paths: list
    test_paths: list
    target: np.ndarray
    defect_type: list
    mask_paths: list

    @classmethod
    def load(cls, root, category):
        from mvtec_sklearn.datasets import load_mvtec

        train = load_mvtec(root, category, split="train")
        test = load_mvtec(root, category, split="test")
        return cls(
            category=category,
            train_paths=[os.fspath(p) for p in train.paths],
            test_paths=[os.fspath(p) for p in test.paths],
            target=np.asarray(test.target, dtype=int),
            defect_type=list(test.defect_type),
            mask_paths=list(test.mask_paths),
        )


# --------------------------------------------------------------------------------------
# Work done in the workers (module-level functions: picklable by loky and Dask)
# --------------------------------------------------------------------------------------


@dataclass
class _Features:
    """Train and test features of one (category, featurizer configuration)."""

    train: np.ndarray
    test: np.ndarray
    seconds: float
    cached: bool


@dataclass
class _Job:
    category: str
    model: str
    detector: object
    train_paths: list
    test_paths: list
    target: np.ndarray
    mask_paths: list
    metrics: list
    n_threads: int | None = None
    base_row: dict = field(default_factory=dict)
    n_bootstrap: int = 0
    seed: int | None = None  # set on the repeats of --seeds


def _limit_threads(n_threads):
    """Give this job ``n_threads`` torch threads (parallel jobs must not oversubscribe the CPUs)."""
    if n_threads is None:
        return
    import torch

    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)


def _error_summary(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f" [at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}]"
        if frames
        else ""
    )
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}{where}"


def _compute_features(featurizer, train_paths, test_paths, n_threads=None):
    """Fit ``featurizer`` on the training images and transform train and test; never raises."""
    try:
        _limit_threads(n_threads)
        start = time.perf_counter()
        featurizer.fit(train_paths)
        train = np.asarray(featurizer.transform(train_paths))
        test = np.asarray(featurizer.transform(test_paths))
        return {"train": train, "test": test, "seconds": time.perf_counter() - start}
    except Exception as exc:  # recorded in every dependent job's row
        return {"error": _error_summary(exc), "traceback": traceback.format_exc()}


def _run_job(job, features=None):
    """Fit, score and evaluate one (category, model); never raises an ``Exception``."""
    from mvtec_sklearn.metrics import anomaly_scores, aupr, f1_max, image_auroc

    row = dict(job.base_row)
    result = {"row": row, "scores": None, "maps": None, "traceback": None}
    try:
        _limit_threads(job.n_threads)
        X_train, X_test = (
            (job.train_paths, job.test_paths)
            if features is None
            else (features.train, features.test)
        )
        detector = job.detector
        start = time.perf_counter()
        detector.fit(X_train)
        row["fit_seconds"] = time.perf_counter() - start
        with_maps = features is None and hasattr(detector, "anomaly_map")
        one_pass = with_maps and hasattr(detector, "score_samples_and_anomaly_map")
        start = time.perf_counter()
        if one_pass:
            # Scores and maps from the same pass over the images (our map detectors).
            normality, maps = detector.score_samples_and_anomaly_map(X_test)
            scores = -np.asarray(normality, dtype=np.float64)
            maps = np.asarray(maps, dtype=np.float32)
        else:
            scores = np.asarray(anomaly_scores(detector, X_test), dtype=np.float64)
        row["predict_seconds"] = time.perf_counter() - start
        if scores.shape != (len(job.target),):
            raise ValueError(
                f"anomaly_scores returned shape {scores.shape}, expected ({len(job.target)},)."
            )
        result["scores"] = scores
        y = job.target
        if "image_auroc" in job.metrics:
            row["image_auroc"] = float(image_auroc(y, scores))
            _interval(row, job, "image_auroc", image_auroc, y, scores)
        if "aupr" in job.metrics:
            row["aupr"] = float(aupr(y, scores))
        if "f1_max" in job.metrics:
            row["f1_max"] = float(f1_max(y, scores)[0])
        if with_maps:
            if one_pass:
                row["map_seconds"] = 0.0
            else:
                start = time.perf_counter()
                maps = np.asarray(detector.anomaly_map(X_test), dtype=np.float32)
                row["map_seconds"] = time.perf_counter() - start
            keep = _overlay_indices(scores, job.target)
            result["maps"] = (keep, maps[keep].astype(np.float16))
            _pixel_metrics(row, job, maps)
        row["status"] = "ok"
    except Exception as exc:  # a failing model is recorded and does not stop the others
        row["status"] = "error"
        row["error"] = _error_summary(exc)
        result["traceback"] = traceback.format_exc()
    return result


def _overlay_indices(scores, target, n=N_OVERLAY):
    """Test images of the anomaly-map figure: the n top-scored and n worst-missed defects."""
    top = np.argsort(-scores, kind="stable")[:n]
    defective = np.flatnonzero(target == 1)
    missed = defective[np.argsort(scores[defective], kind="stable")][:n]
    return np.unique(np.concatenate([top, missed]))


def _pixel_metrics(row, job, maps):
    wanted = [m for m in PIXEL_METRICS if m in job.metrics]
    if not wanted:
        return
    from mvtec_sklearn.datasets import load_masks
    from mvtec_sklearn.metrics import aupro, pixel_auroc

    if maps.ndim != 3 or maps.shape[0] != len(job.target):
        raise ValueError(
            f"anomaly_map returned shape {maps.shape}, expected ({len(job.target)}, H, W)."
        )
    masks = load_masks(job.mask_paths, size=maps.shape[1:])
    if not masks.any() or masks.all():
        return  # no defect pixel (or no normal pixel): the pixel metrics are undefined
    labels = masks.any(axis=(1, 2)).astype(int)
    if "pixel_auroc" in wanted:
        row["pixel_auroc"] = float(pixel_auroc(masks, maps))
        _interval(row, job, "pixel_auroc", lambda y, a, b: pixel_auroc(a, b), labels, masks, maps)
    if "aupro" in wanted:
        row["aupro"] = float(aupro(masks, maps))
        _interval(row, job, "aupro", lambda y, a, b: aupro(a, b), labels, masks, maps)


def _interval(row, job, name, metric, y, *arrays):
    """Bootstrap 95 % interval of ``name`` into ``row`` (resampling images, per class)."""
    if not job.n_bootstrap or np.unique(y).size < 2:
        return
    from mvtec_sklearn.metrics import bootstrap_ci

    ci = bootstrap_ci(metric, y, *arrays, n_resamples=job.n_bootstrap, random_state=0)
    row[f"{name}_low"], row[f"{name}_high"] = ci.low, ci.high


def _indexed(func, index, *args):
    return index, func(*args)


_WATCHED_PARENT: list[int] = []


def _exit_with_parent(owner_pid, poll=0.5):
    """In a worker process of ``owner_pid``: exit as soon as that process is gone.

    A benchmark killed with SIGKILL cannot stop its joblib workers, which would
    otherwise finish their current job (minutes of a deep model) for nothing. A
    daemon thread notices the re-parenting and ends the worker.
    """
    if os.getppid() != owner_pid or _WATCHED_PARENT:
        return  # the main process itself (threading backend), or already watched
    _WATCHED_PARENT.append(owner_pid)

    def watch():
        while os.getppid() == owner_pid:
            time.sleep(poll)
        os._exit(1)

    import threading

    threading.Thread(target=watch, name="mvtec-sklearn-parent-watch", daemon=True).start()


def _indexed_in_worker(owner_pid, func, index, *args):
    _exit_with_parent(owner_pid)
    return index, func(*args)


# --------------------------------------------------------------------------------------
# Executors: joblib (loky, threading, ...) and Dask distributed
# --------------------------------------------------------------------------------------


class _JoblibExecutor:
    def __init__(self, n_jobs, backend):
        self.n_jobs = n_jobs
        self.backend = backend

    def share(self, obj):
        return obj

    def run(self, func, arg_tuples):
        """Yield ``(index, result)`` in completion order."""
        from joblib import Parallel, delayed

        if not arg_tuples:
            return
        parallel = Parallel(
            n_jobs=self.n_jobs, backend=self.backend, return_as="generator_unordered"
        )
        tasks = (
            delayed(_indexed_in_worker)(os.getpid(), func, i, *args)
            for i, args in enumerate(arg_tuples)
        )
        with warnings.catch_warnings(), contextlib.closing(parallel(tasks)) as gen:
            # loky replaces a worker whose memory grew (torch models do); that is harmless here
            warnings.filterwarnings(
                "ignore", message="A worker stopped while some jobs", category=UserWarning
            )
            yield from gen

    def close(self):
        pass


class _DaskExecutor:
    def __init__(self, scheduler, n_workers):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "backend='dask' needs dask.distributed: pip install 'mvtec-sklearn[distributed]'."
            ) from exc
        self._owned = []
        if isinstance(scheduler, Client):
            self.client = scheduler
        elif scheduler is None:
            import logging

            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            self.client = Client(cluster)
            self._owned = [self.client, cluster]
        else:
            self.client = Client(scheduler)
            self._owned = [self.client]

    def share(self, obj):
        return self.client.scatter(obj, broadcast=False)

    def run(self, func, arg_tuples):
        from dask.distributed import as_completed

        futures = [
            self.client.submit(_indexed, func, i, *args, pure=False)
            for i, args in enumerate(arg_tuples)
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self):
        for obj in self._owned:
            obj.close()


def _make_executor(n_jobs, backend, scheduler):
    from joblib import effective_n_jobs

    n = effective_n_jobs(n_jobs)
    cpus = os.cpu_count() or 1
    if backend == "dask":
        # A LocalCluster we create gets one single-threaded worker per job; a remote
        # cluster's workers keep their own thread settings.
        threads = max(1, cpus // n) if scheduler is None and n > 1 else None
        return _DaskExecutor(scheduler, n), threads
    if scheduler is not None:
        raise ValueError("scheduler is only used with backend='dask'.")
    threads = max(1, cpus // n) if n > 1 else None
    return _JoblibExecutor(n_jobs, backend), threads


# --------------------------------------------------------------------------------------
# Results file and per-job outputs
# --------------------------------------------------------------------------------------


def _atomic_write_csv(frame, path):
    with atomic_write(path, "w") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")


def _read_rows(path):
    """The complete, well-formed rows of a results file, and how many were damaged.

    A row is complete when its line ends with a newline (rows are appended one
    whole line per write) and has as many fields as the header.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    text = data.decode("utf-8", errors="replace")
    complete, _, tail = text.rpartition("\n")
    damaged = int(bool(tail.strip()))  # a last line without its newline was cut short
    try:
        records = list(csv.reader(io.StringIO(complete)))
    except csv.Error as exc:
        raise ValueError(f"Cannot parse the results file {path!r}: {exc}") from exc
    if not records:
        return None, [], damaged
    header, body = records[0], records[1:]
    if "category" not in header or "model" not in header:
        raise ValueError(
            f"{path!r} is not a results file of run_benchmark (header {header[:4]}...)."
        )
    status = header.index("status") if "status" in header else None
    good = []
    for record in body:
        if not record:
            continue
        if len(record) != len(header) or (
            status is not None and record[status] not in ("ok", "error")
        ):
            damaged += 1
            continue
        good.append(record)
    return header, good, damaged


def load_results(out: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``results.csv`` from a benchmark output folder (latest row per job).

    Parameters
    ----------
    out : str or os.PathLike
        Output folder of :func:`run_benchmark`, or the path of a results CSV file.

    Returns
    -------
    DataFrame
        Columns :data:`RESULT_COLUMNS`; empty when the file does not exist.

    Raises
    ------
    ValueError
        If the file is not a results file or cannot be parsed (the message
        names it).

    Warns
    -----
    UserWarning
        When damaged rows (a line cut short by a killed run, or with the wrong
        number of fields) were skipped; the message names the file.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.benchmark import load_results
    >>> load_results(tempfile.mkdtemp()).empty
    True
    """
    path = os.fspath(out)
    if os.path.isdir(path):
        path = os.path.join(path, "results.csv")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    header, records, damaged = _read_rows(path)
    if damaged:
        warnings.warn(
            f"Skipped {damaged} damaged row(s) of the results file {path!r} (cut short or "
            "malformed, e.g. by a killed run); those jobs will be run again.",
            UserWarning,
            stacklevel=2,
        )
    if header is None:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *records])
    buffer.seek(0)
    frame = pd.read_csv(buffer, keep_default_na=True)
    frame = frame.reindex(columns=RESULT_COLUMNS)
    return frame.drop_duplicates(
        subset=["category", "model", "config_id"], keep="last"
    ).reset_index(drop=True)


def load_scores(out: str | os.PathLike[str], results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-image test scores saved by :func:`run_benchmark` (for ROC curves after a resumed run).

    Parameters
    ----------
    out : str or os.PathLike
        Output folder of :func:`run_benchmark`.
    results : DataFrame, default=None
        Keep only the scores of these (successful) rows, matched on category,
        model and configuration; by default all saved scores.

    Returns
    -------
    DataFrame
        Columns ``category, model, config_id, path, defect_type, label, anomaly_score``.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.benchmark import load_scores
    >>> load_scores(tempfile.mkdtemp()).empty
    True
    """
    columns = ["category", "model", "config_id", "path", "defect_type", "label", "anomaly_score"]
    folder = os.path.join(os.fspath(out), "scores")
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    frames = [_read_scores(os.path.join(folder, f)) for f in files if f.endswith(".csv")]
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if results is not None:
        ok = results[results["status"] == "ok"][["category", "model", "config_id"]]
        scores = scores.merge(ok, on=["category", "model", "config_id"], how="inner")
    return scores.reindex(columns=columns)


def _read_scores(path):
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"Cannot parse the scores file {path!r}: {exc}") from exc


class _Outputs:
    """Everything written into ``out`` while jobs finish (main process only)."""

    def __init__(self, out, root=None):
        self.out = None if out is None else check_outside_dataset(out, root, what="out")
        if self.out is not None:
            for sub in ("", "scores", "maps", "errors"):
                os.makedirs(os.path.join(self.out, sub), exist_ok=True)
            for sub in ("", "scores", "maps", "errors", "plots", "plots/roc", "plots/maps"):
                remove_stale_temporaries(os.path.join(self.out, sub))
        self.results_path = None if self.out is None else os.path.join(self.out, "results.csv")

    def previous(self):
        if self.out is None:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        previous = load_results(self.out)
        if os.path.isfile(self.results_path):
            _atomic_write_csv(previous, self.results_path)  # normalised columns, one row per job
        return previous

    def log(self, line):
        if self.out is not None:
            with open(os.path.join(self.out, "benchmark.log"), "a") as fh:
                fh.write(f"{_dt.datetime.now().isoformat(timespec='seconds')} {line}\n")

    def save_job(self, job, data, result):
        """Write the job's scores, maps and traceback, then append its row.

        The row comes last, so a row in results.csv implies its files exist.
        """
        if self.out is None:
            return
        row = result["row"]
        stem = _job_stem(job.category, job.model, job.seed)
        if result["scores"] is not None:
            frame = pd.DataFrame(
                {
                    "category": job.category,
                    "model": job.model,
                    "config_id": row["config_id"],
                    "path": data.test_paths,
                    "defect_type": data.defect_type,
                    "label": data.target,
                    "anomaly_score": result["scores"],
                }
            )
            _atomic_write_csv(frame, os.path.join(self.out, "scores", f"{stem}.csv"))
        if result["maps"] is not None:
            keep, maps = result["maps"]
            with atomic_write(os.path.join(self.out, "maps", f"{stem}.npz")) as fh:
                np.savez_compressed(
                    fh,
                    maps=maps,
                    index=keep,
                    paths=np.asarray([data.test_paths[i] for i in keep]),
                    mask_paths=np.asarray(
                        [
                            "" if data.mask_paths[i] is None else os.fspath(data.mask_paths[i])
                            for i in keep
                        ]
                    ),
                    label=data.target[keep],
                    anomaly_score=result["scores"][keep],
                    config_id=np.asarray(row["config_id"]),
                    title=np.asarray(f"{job.category} — {job.model}"),
                )
            self.draw_overlay(stem)
        if result["traceback"]:
            self.write_traceback(job.category, job.model, result["traceback"])
        self.append(row)

    def draw_overlay(self, stem):
        """Draw the job's anomaly-map figure now, while the workers go on (the report reuses it)."""
        from ._report import overlay_figure

        try:
            overlay_figure(
                os.path.join(self.out, "maps", f"{stem}.npz"),
                os.path.join(self.out, "plots", "maps", f"{stem}.png"),
            )
        except Exception as exc:  # a figure must never cost a result; the report retries it
            self.log(f"could not draw plots/maps/{stem}.png: {_error_summary(exc)}")

    def write_traceback(self, category, model, trace):
        if self.out is not None:
            path = os.path.join(self.out, "errors", f"{_job_stem(category, model)}.txt")
            with atomic_write(path, "w") as fh:
                fh.write(trace)

    def append(self, row):
        """Append ``row`` to results.csv as one whole line in one write.

        The file is opened with ``O_APPEND`` and the line, newline included, goes
        out in a single ``os.write``: a run killed at any moment leaves either
        the whole row or a last line without its newline, which
        :func:`load_results` skips.
        """
        if self.out is None:
            return
        frame = pd.DataFrame([row]).reindex(columns=RESULT_COLUMNS)
        fd = os.open(self.results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            new = os.fstat(fd).st_size == 0
            data = frame.to_csv(header=new, index=False, lineterminator="\n").encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------


def _config_id(model, featurizer, detector, image_size, random_state, root, category):
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


def _format_line(done, total, row):
    head = f"[{done}/{total}] {row['category']:<14} {row['model']:<24}"
    if row["status"] != "ok":
        return f"{head} FAILED  {row['error']}"
    parts = [
        (
            f"image AUROC {row['image_auroc']:.3f}"
            if pd.notna(row.get("image_auroc"))
            else "image AUROC  n/a"
        )
    ]
    if pd.notna(row.get("pixel_auroc")):
        parts.append(f"pixel AUROC {row['pixel_auroc']:.3f}")
    seconds = sum(
        float(row.get(k) or 0.0) for k in ("fit_seconds", "predict_seconds", "map_seconds")
    )
    parts.append(f"{seconds:6.1f} s")
    return f"{head} " + "  ".join(parts)


def run_benchmark(
    root: str | os.PathLike[str] | None = None,
    categories: str | Sequence[str] | None = None,
    models: str | Sequence[str] | dict[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    image_size: int | None = None,
    n_jobs: int = 1,
    backend: Literal["loky", "threading", "dask"] | None = None,
    scheduler: str | Client | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    random_state: int = 0,
    seeds: int = 1,
    n_bootstrap: int = 200,
    verbose: bool = False,
    dataset: Literal["photos", "synthetic"] | None = None,
) -> pd.DataFrame:
    """Run every model on every category and collect image and pixel metrics.

    Each (category, model) pair is one job: fit on the category's good training
    images, score its test images (anomaly score ``= -score_samples``, see
    :func:`mvtec_sklearn.metrics.anomaly_scores`) and compute the metrics.
    Registry models that share a featurizer configuration share its features,
    computed once per category (and kept in an on-disk cache). With ``out``,
    every finished job's row is appended to ``out/results.csv`` at once; a
    rerun with the same ``out`` skips the jobs already finished with the same
    configuration and completes the rest (failed jobs are retried), so an
    interrupted run loses nothing. A failing model is recorded with its error
    and does not stop the others.

    Parameters
    ----------
    root : str or os.PathLike, default=None
        MVTec AD folder (one sub-folder per category). None runs on a built-in
        dataset, generated once and cached (see ``dataset``).
    categories : str or list of str, default=None
        Categories to run; by default every category found under ``root``.
    models : None, "all", str, list or dict, default=None
        None runs the representative default set (``list_models(default_only=True)``),
        "all" the whole registry. Otherwise registry names and/or user estimators or
        pipelines given by name: a dict name -> estimator or ``(name, estimator)``
        pairs. User estimators receive image paths and are cloned for every category.
    metrics : list of str, default=None
        Subset of :data:`METRICS` (``image_auroc, aupr, f1_max, pixel_auroc, aupro``);
        all by default. Pixel metrics are computed for models with ``anomaly_map``.
    image_size : int, default=None
        Side length images are resized to, passed to every registry factory;
        None keeps each model's own default.
    n_jobs : int, default=1
        Number of jobs run in parallel (joblib semantics: -1 = all CPUs). With
        several jobs, each job gets ``cpu_count // n_jobs`` torch threads.
    backend : {None, "loky", "threading", "dask"}, default=None
        None or a joblib backend name runs the jobs through :class:`joblib.Parallel`;
        "dask" runs them on a Dask distributed cluster.
    scheduler : str or dask.distributed.Client, default=None
        With ``backend="dask"``: a scheduler address or a client. None starts a
        ``LocalCluster`` with ``n_jobs`` single-threaded workers.
    cache_dir : str or os.PathLike, default=None
        Feature cache folder; defaults to ``out/cache`` (no disk cache without ``out``).
        Never inside ``root``.
    out : str or os.PathLike, default=None
        Output folder: ``results.csv``, ``summary.md``, ``plots/``, ``scores/``,
        ``maps/``, ``errors/``, ``benchmark.log``. None writes nothing. Never
        inside ``root`` (nor inside a category folder that is a symbolic link
        elsewhere): a ``ValueError`` says so.
    random_state : int, default=0
        Seed passed to every registry factory that accepts one.
    seeds : int, default=1
        Runs of every stochastic model (one with a ``random_state``
        parameter), with seeds ``random_state``, ``random_state + 1``, ...;
        each run is one row, and the report gives mean and standard deviation.
    n_bootstrap : int, default=200
        Bootstrap resamples of the 95 % confidence intervals of image AUROC,
        pixel AUROC and AUPRO (columns ``<metric>_low``, ``<metric>_high``;
        :func:`mvtec_sklearn.metrics.bootstrap_ci`); 0 skips them.
    verbose : bool, default=False
        Progress bars and one log line per finished job.
    dataset : {"photos", "synthetic"} or None, default=None
        The built-in dataset used when ``root`` is None, each with 30 good
        training images and 10 good + 20 defective test images per category:
        ``"photos"`` (the default), the 12 real-photo categories
        (:func:`mvtec_sklearn.datasets.photos_root`, 256 px), or
        ``"synthetic"``, the 15 rendered ones
        (:func:`mvtec_sklearn.datasets.synthetic_root`). Passing it together
        with ``root`` is an error.

    Returns
    -------
    results : DataFrame
        One row per (category, model, seed) with columns :data:`RESULT_COLUMNS`:
        metrics (NaN when not applicable), ``fit_seconds`` / ``predict_seconds`` /
        ``map_seconds`` of the detector (``map_seconds`` is the extra time of the
        anomaly maps: 0 for detectors with ``score_samples_and_anomaly_map``, whose
        ``predict_seconds`` covers scores and maps from one pass), ``feature_seconds`` of the shared
        featurizer (train + test, measured when the features were computed;
        ``features_cached`` tells whether this run read them from the disk cache),
        ``n_train``, ``n_test``, ``status`` ("ok" or "error") and ``error``.

    Examples
    --------
    >>> from mvtec_sklearn.benchmark import run_benchmark
    >>> results = run_benchmark(categories=["coffee"], models=["iforest-pixels"])  # doctest: +SKIP
    >>> results[["category", "model", "image_auroc"]]  # doctest: +SKIP
    """
    start_time = time.perf_counter()
    if int(seeds) < 1 or int(n_bootstrap) < 0:
        raise ValueError(f"seeds must be >= 1 and n_bootstrap >= 0; got {seeds} and {n_bootstrap}.")
    seed_list = [random_state + i for i in range(int(seeds))]
    metrics = _resolve_metrics(metrics)
    model_list = _resolve_models(models)
    if backend not in (None, "loky", "threading", "multiprocessing", "dask"):
        raise ValueError(
            "backend must be None, 'loky', 'threading', 'multiprocessing' or 'dask'; "
            f"got {backend!r}."
        )
    root = _resolve_root(root, dataset)
    category_list = _resolve_categories(root, categories)
    outputs = _Outputs(out, root)
    if cache_dir is None and outputs.out is not None:
        cache_dir = os.path.join(outputs.out, "cache")
    if cache_dir is not None:
        cache_dir = check_outside_dataset(cache_dir, root, what="cache_dir")
    cache = FeatureCache(cache_dir)
    previous = outputs.previous()
    finished = {
        (r.category, r.model, r.config_id): r._asdict()
        for r in previous[previous["status"] == "ok"].itertuples(index=False)
    }

    executor, n_threads = _make_executor(n_jobs, backend, scheduler)
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}  # (category, model, seed) -> row
    interrupted = False
    try:
        jobs, feature_groups, data, build_errors = _plan(
            model_list,
            category_list,
            root,
            image_size,
            seed_list,
            metrics,
            n_threads,
            cache,
            finished,
            rows,
            n_bootstrap,
        )
        total = len(jobs) + len(build_errors)
        _log(
            outputs,
            verbose,
            f"Benchmark of {len(model_list)} models on {len(category_list)} categories "
            f"({root}): {len(rows)} jobs already finished, {total} to run.",
        )
        for done, (row, trace) in enumerate(build_errors, start=1):  # models whose factory failed
            rows[(row["category"], row["model"], row["random_state"])] = row
            outputs.write_traceback(row["category"], row["model"], trace)
            outputs.append(row)
            _log(outputs, verbose, _format_line(done, total, row))
        features = _run_features(executor, feature_groups, cache, n_threads, outputs, verbose)
        _run_jobs(executor, jobs, features, data, rows, outputs, verbose, total)
    except KeyboardInterrupt:
        interrupted = True
        _log(
            outputs,
            verbose,
            f"Interrupted: finished jobs are kept in {outputs.results_path}; "
            "run the same command again to complete the rest.",
        )
        raise
    finally:
        executor.close()
        if not interrupted and outputs.out is not None:
            _atomic_write_csv(load_results(outputs.out), outputs.results_path)

    results = pd.DataFrame(
        [rows[(c, m.name, s)] for c in category_list for m in model_list for s in seed_list
         if (c, m.name, s) in rows]
    )
    results = results.reindex(columns=RESULT_COLUMNS)
    if outputs.out is not None:
        from ._report import write_report

        elapsed = time.perf_counter() - start_time
        path = write_report(
            outputs.out,
            results=results,
            settings={
                "root": root,
                "image_size": image_size,
                "n_jobs": n_jobs,
                "backend": backend or "loky",
                "random_state": random_state,
                "seeds": int(seeds),
                "wall_seconds": elapsed,
            },
            n_bootstrap=n_bootstrap,
        )
        _log(outputs, verbose, f"Report written to {path} ({elapsed:.0f} s)")
    return results


def _log(outputs, verbose, line):
    outputs.log(line)
    if verbose:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stderr)


def _plan(
    model_list,
    category_list,
    root,
    image_size,
    seed_list,
    metrics,
    n_threads,
    cache,
    finished,
    rows,
    n_bootstrap=0,
):
    """Build the pending jobs, the featurizers they need and the rows of unbuildable models.

    ``rows`` receives the rows of jobs already finished in a previous run. A
    model runs once per seed of ``seed_list`` when it has a ``random_state``
    parameter, else once (with the first seed).
    """
    jobs, feature_groups, data, build_errors = [], {}, {}, []
    for category in category_list:
        cdata = _CategoryData.load(root, category)
        data[category] = cdata
        for model, random_state in (
            (m, s) for m in model_list for s in seed_list
        ):
            base = {
                "category": category,
                "model": model.name,
                "input": model.input,
                "weights": model.weights,
                "image_size": image_size,
                "random_state": random_state,
                "n_train": len(cdata.train_paths),
                "n_test": len(cdata.test_paths),
                "n_test_anomalous": int(cdata.target.sum()),
                "features_cached": False,
            }
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
                if random_state == seed_list[0]:
                    build_errors.append((base, traceback.format_exc()))
                continue
            if random_state != seed_list[0] and not _has_seed(featurizer, detector):
                continue  # deterministic: one run is enough
            base["config_id"] = _config_id(
                model, featurizer, detector, image_size, random_state, root, category
            )
            done = finished.get((category, model.name, base["config_id"]))
            if done is not None:
                rows[(category, model.name, random_state)] = done
                continue
            key = None
            if featurizer is not None:
                key = FeatureCache.key(
                    featurizer, {"train": cdata.train_paths, "test": cdata.test_paths}, image_size
                )
                feature_groups.setdefault(
                    key,
                    {
                        "featurizer": featurizer,
                        "category": category,
                        "input": model.input,
                        "train_paths": cdata.train_paths,
                        "test_paths": cdata.test_paths,
                    },
                )
            jobs.append(
                (
                    _Job(
                        category=category,
                        model=model.name,
                        detector=detector,
                        train_paths=cdata.train_paths,
                        test_paths=cdata.test_paths,
                        target=cdata.target,
                        mask_paths=cdata.mask_paths,
                        metrics=metrics,
                        n_threads=n_threads,
                        base_row=base,
                        n_bootstrap=int(n_bootstrap),
                        seed=None if random_state == seed_list[0] else random_state,
                    ),
                    key,
                )
            )
    return jobs, feature_groups, data, build_errors


def _run_features(executor, feature_groups, cache, n_threads, outputs, verbose):
    """Load cached features and compute the missing ones in parallel.

    Returns a dict key -> :class:`_Features`, or the error message when extraction failed.
    """
    from mvtec_sklearn.utils import progress

    features, missing = {}, []
    for key, group in feature_groups.items():
        entry = cache.load(key)
        if entry is not None and "train" in entry and "test" in entry:
            features[key] = _Features(entry["train"], entry["test"], entry["seconds"], cached=True)
        else:
            missing.append(key)
    if not missing:
        return features
    _log(
        outputs,
        verbose,
        f"Computing features: {len(missing)} (category, featurizer) pairs, "
        f"{len(feature_groups) - len(missing)} read from the cache.",
    )
    arg_tuples = [
        (
            feature_groups[k]["featurizer"],
            feature_groups[k]["train_paths"],
            feature_groups[k]["test_paths"],
            n_threads,
        )
        for k in missing
    ]
    bar = progress(total=len(missing), verbose=verbose, desc="features")
    try:
        for index, result in executor.run(_compute_features, arg_tuples):
            key, group = missing[index], feature_groups[missing[index]]
            if "error" in result:
                features[key] = result["error"]
                outputs.write_traceback(
                    group["category"], f"features-{key[:8]}", result["traceback"]
                )
                _log(
                    outputs,
                    verbose,
                    f"features {group['category']} / {group['input']}: FAILED {result['error']}",
                )
            else:
                cache.save(
                    key,
                    {"train": result["train"], "test": result["test"]},
                    seconds=result["seconds"],
                )
                features[key] = _Features(
                    result["train"], result["test"], result["seconds"], cached=False
                )
                _log(
                    outputs,
                    verbose,
                    f"features {group['category']:<14} {group['input']:<28} "
                    f"{result['seconds']:6.1f} s",
                )
            bar.update()
    finally:
        bar.close()
    return features


def _run_jobs(executor, jobs, features, data, rows, outputs, verbose, total):
    from mvtec_sklearn.utils import progress

    shared = {k: executor.share(v) for k, v in features.items() if isinstance(v, _Features)}
    runnable = []
    done = total - len(jobs)
    for job, key in jobs:
        if key is not None and not isinstance(features.get(key), _Features):
            row = dict(
                job.base_row,
                status="error",
                error=f"feature extraction failed: {features.get(key)}",
                finished_at=_dt.datetime.now().isoformat(timespec="seconds"),
            )
            rows[(job.category, job.model, job.base_row["random_state"])] = row
            outputs.append(row)
            done += 1
            _log(outputs, verbose, _format_line(done, total, row))
            continue
        if key is not None:
            job.base_row["feature_seconds"] = features[key].seconds
            job.base_row["features_cached"] = features[key].cached
        runnable.append((job, shared.get(key)))
    if not runnable:
        return
    bar = progress(total=len(runnable), verbose=verbose, desc="jobs")
    try:
        for index, result in executor.run(_run_job, runnable):
            job = runnable[index][0]
            row = result["row"]
            row["finished_at"] = _dt.datetime.now().isoformat(timespec="seconds")
            outputs.save_job(job, data[job.category], result)
            rows[(job.category, job.model, job.base_row["random_state"])] = row
            done += 1
            bar.update()
            _log(outputs, verbose, _format_line(done, total, row))
    finally:
        bar.close()
