"""The benchmark runner: every category x every model, resumable, in parallel.

:func:`run_benchmark` resolves its inputs and plans the jobs (``_planning``),
computes the shared features and runs the jobs on an executor (``_executors``,
``_jobs``), writes every finished job into the results folder (``_results``)
and ends with the report (``_report``).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from mvtec_sklearn.utils import check_outside_dataset

from ._cache import FeatureCache
from ._executors import _check_backend, _make_executor
from ._jobs import _compute_features, _Features, _run_job
from ._planning import _plan, _Request
from ._report import overlay_figure, write_report
from ._results import RESULT_COLUMNS, _atomic_write_csv, _Outputs, load_results

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dask.distributed import Client

__all__ = ["run_benchmark"]


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
        None (loky), "loky" or "threading" runs the jobs through
        :class:`joblib.Parallel`; "dask" runs them on a Dask distributed cluster.
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
    _check_backend(backend)
    request = _Request.resolve(
        root=root,
        dataset=dataset,
        categories=categories,
        models=models,
        metrics=metrics,
        image_size=image_size,
        random_state=random_state,
        seeds=seeds,
        n_bootstrap=n_bootstrap,
    )
    outputs = _Outputs(out, request.root, overlay=overlay_figure)
    if cache_dir is None and outputs.out is not None:
        cache_dir = os.path.join(outputs.out, "cache")
    if cache_dir is not None:
        cache_dir = check_outside_dataset(cache_dir, request.root, what="cache_dir")
    cache = FeatureCache(cache_dir)
    previous = outputs.previous()
    finished = {
        (r.category, r.model, r.config_id): r._asdict()
        for r in previous[previous["status"] == "ok"].itertuples(index=False)
    }

    executor, n_threads = _make_executor(n_jobs, backend, scheduler)
    interrupted = False
    try:
        plan = _plan(request, finished, n_threads)
        tally = _Tally(outputs, verbose, plan)
        _log(
            outputs,
            verbose,
            f"Benchmark of {len(request.models)} models on {len(request.categories)} categories "
            f"({request.root}): {len(plan.finished)} jobs already finished, {plan.total} to run.",
        )
        for row, trace in plan.build_errors:  # models whose factory failed
            outputs.write_traceback(row["category"], row["model"], trace)
            outputs.append(row)
            tally.add(row)
        features = _run_features(executor, plan.feature_groups, cache, n_threads, outputs, verbose)
        _run_jobs(executor, plan, features, tally)
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

    rows, seed_list = tally.rows, request.seeds
    keys = ((c, m.name, s) for c in request.categories for m in request.models for s in seed_list)
    results = pd.DataFrame([rows[k] for k in keys if k in rows])
    results = results.reindex(columns=RESULT_COLUMNS)
    if outputs.out is not None:
        elapsed = time.perf_counter() - start_time
        path = write_report(
            outputs.out,
            results=results,
            settings={
                "root": request.root,
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


class _Tally:
    """The rows of a run, counted and logged as they are written."""

    def __init__(self, outputs, verbose, plan):
        self.outputs, self.verbose, self.total = outputs, verbose, plan.total
        self.rows = dict(plan.finished)  # (category, model, seed) -> row
        self.done = 0

    def add(self, row):
        """Count ``row`` (already written to ``results.csv``) and log its line."""
        self.rows[(row["category"], row["model"], row["random_state"])] = row
        self.done += 1
        _log(self.outputs, self.verbose, _format_line(self.done, self.total, row))


def _run_features(executor, feature_groups, cache, n_threads, outputs, verbose):
    """Load cached features and compute the missing ones in parallel.

    Returns a dict key -> :class:`_Features`, or the error message when extraction failed.
    """
    from mvtec_sklearn.utils import progress

    features, missing = {}, []
    for key in feature_groups:
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
    groups = [feature_groups[k] for k in missing]
    arg_tuples = [(g.featurizer, g.train_paths, g.test_paths, n_threads) for g in groups]
    bar = progress(total=len(missing), verbose=verbose, desc="features")
    try:
        for index, result in executor.run(_compute_features, arg_tuples):
            key, group = missing[index], groups[index]
            if "error" in result:
                features[key] = result["error"]
                outputs.write_traceback(group.category, f"features-{key[:8]}", result["traceback"])
                _log(
                    outputs,
                    verbose,
                    f"features {group.category} / {group.input}: FAILED {result['error']}",
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
                    f"features {group.category:<14} {group.input:<28} "
                    f"{result['seconds']:6.1f} s",
                )
            bar.update()
    finally:
        bar.close()
    return features


def _run_jobs(executor, plan, features, tally):
    """Run the planned jobs whose features exist; record a failed row for the others."""
    from mvtec_sklearn.utils import progress

    outputs = tally.outputs
    shared = {k: executor.share(v) for k, v in features.items() if isinstance(v, _Features)}
    runnable = []
    for job, key in plan.jobs:
        if key is not None and not isinstance(features.get(key), _Features):
            row = dict(
                job.base_row,
                status="error",
                error=f"feature extraction failed: {features.get(key)}",
                finished_at=_dt.datetime.now().isoformat(timespec="seconds"),
            )
            outputs.append(row)
            tally.add(row)
            continue
        if key is not None:
            job.base_row["feature_seconds"] = features[key].seconds
            job.base_row["features_cached"] = features[key].cached
        runnable.append((job, shared.get(key)))
    if not runnable:
        return
    bar = progress(total=len(runnable), verbose=tally.verbose, desc="jobs")
    try:
        for index, result in executor.run(_run_job, runnable):
            job = runnable[index][0]
            row = result["row"]
            row["finished_at"] = _dt.datetime.now().isoformat(timespec="seconds")
            outputs.save_job(job, result)
            bar.update()
            tally.add(row)
    finally:
        bar.close()
