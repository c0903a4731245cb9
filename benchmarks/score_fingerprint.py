"""Record every score of a small benchmark run, or compare one with a recorded run.

A refactoring must not change behaviour: run this before the change (``record``)
and after it (``compare``). It runs :func:`mvtec_sklearn.benchmark.run_benchmark`
on a few categories of a built-in dataset with every registry model (one job at
a time, no bootstrap) and keeps, per job, the metrics, every per-image anomaly
score and the saved anomaly maps. ``compare`` prints the largest difference of
each kind and exits 1 when anything differs (timings are ignored).

Usage::

    python benchmarks/score_fingerprint.py record /tmp/before.npz
    python benchmarks/score_fingerprint.py compare /tmp/before.npz
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np


def fingerprint(dataset, categories, models):
    """Run the benchmark and return ``{key: array}`` of every metric, score and map."""
    from mvtec_sklearn.benchmark import METRICS, load_results, load_scores, run_benchmark

    with tempfile.TemporaryDirectory() as out:
        run_benchmark(
            dataset=dataset,
            categories=categories,
            models=models,
            out=out,
            n_jobs=1,
            n_bootstrap=0,
            random_state=0,
        )
        results = load_results(out).sort_values(["category", "model"])
        record = {}
        for row in results.itertuples(index=False):
            key = f"{row.category}/{row.model}"
            if row.status != "ok":
                record[f"{key}/status"] = np.array([str(row.status)])
                continue
            record[f"{key}/metrics"] = np.array(
                [getattr(row, m) for m in METRICS], dtype=np.float64
            )
        scores = load_scores(out).sort_values(["category", "model", "path"])
        for (category, model), group in scores.groupby(["category", "model"]):
            record[f"{category}/{model}/scores"] = group["anomaly_score"].to_numpy(np.float64)
        maps_dir = os.path.join(out, "maps")
        for name in sorted(os.listdir(maps_dir)) if os.path.isdir(maps_dir) else []:
            with np.load(os.path.join(maps_dir, name)) as data:
                record[f"maps/{name}"] = data["maps"].astype(np.float64)
    return record


def compare(before, after):
    """Print the differences of two fingerprints; return True when they are identical."""
    same = True
    for key in sorted(set(before) | set(after)):
        if key not in before or key not in after:
            print(f"{key}: only {'before' if key in before else 'after'}")
            same = False
            continue
        a, b = before[key], after[key]
        if a.dtype.kind in "US" or b.dtype.kind in "US":
            equal = a.shape == b.shape and bool(np.all(a == b))
            detail = "" if equal else f"{a} -> {b}"
        elif a.shape != b.shape:
            equal, detail = False, f"shape {a.shape} -> {b.shape}"
        else:
            equal = bool(np.array_equal(a, b, equal_nan=True))
            diff = np.nanmax(np.abs(a - b)) if a.size else 0.0
            detail = "" if equal else f"max |diff| {diff:.3g}"
        if not equal:
            print(f"{key}: {detail}")
            same = False
    print(f"{len(before)} entries before, {len(after)} after: {'IDENTICAL' if same else 'DIFFERENT'}")
    return same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["record", "compare"])
    parser.add_argument("file", help="fingerprint file (.npz)")
    parser.add_argument("--dataset", default="synthetic", choices=["photos", "synthetic"])
    parser.add_argument("--categories", nargs="+", default=["tile", "bottle"])
    parser.add_argument("--models", nargs="+", default=["all"])
    args = parser.parse_args(argv)
    models = "all" if args.models == ["all"] else args.models
    record = fingerprint(args.dataset, args.categories, models)
    if args.action == "record":
        np.savez_compressed(args.file, **record)
        print(f"recorded {len(record)} entries in {args.file}")
        return 0
    with np.load(args.file) as data:
        before = {k: data[k] for k in data.files}
    return 0 if compare(before, record) else 1


if __name__ == "__main__":
    sys.exit(main())
