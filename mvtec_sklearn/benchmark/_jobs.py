"""Work done in the benchmark's workers: features of one category, one (category, model) job.

Module-level functions and plain dataclasses, so that loky and Dask can pickle them.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from ._results import N_OVERLAY, PIXEL_METRICS, _error_summary


@dataclass
class _CategoryData:
    """The test set of one category and its training image paths."""

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
    data: _CategoryData
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
            (job.data.train_paths, job.data.test_paths)
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
        if scores.shape != (len(job.data.target),):
            raise ValueError(
                f"anomaly_scores returned shape {scores.shape}, expected ({len(job.data.target)},)."
            )
        result["scores"] = scores
        y = job.data.target
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
            keep = _overlay_indices(scores, job.data.target)
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

    if maps.ndim != 3 or maps.shape[0] != len(job.data.target):
        raise ValueError(
            f"anomaly_map returned shape {maps.shape}, expected ({len(job.data.target)}, H, W)."
        )
    masks = load_masks(job.data.mask_paths, size=maps.shape[1:])
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
