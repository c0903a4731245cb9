"""Cost of the benchmark runner's shared feature cache.

Four detectors on the same featurizer (the registry's ``ocsvm-effnet``,
``iforest-effnet``, ``lof-effnet`` and ``knn-effnet``: pooled EfficientNet-Lite0
features) are run on each category in four ways, side by side:

* reference   -- the features computed once by hand, then the four detectors fitted
                 and scored on them: the least work possible ("features + 4 fits");
* pipelines   -- four independent ``make_pipeline(featurizer, detector)`` fits, the
                 naive way (features computed four times);
* runner cold -- ``run_benchmark`` with an empty feature cache;
* runner warm -- ``run_benchmark`` again with the same cache folder (features read
                 from disk).

The runner calls use ``out=None`` (no report) so that they time the same work as
the reference; the last line times a run that also writes the report and figures.
The reference and the cold run alternate ``--repeat`` times and the fastest of each
is reported, so that the load of a shared machine hits both alike.

Run from the repository root::

    python benchmarks/bench_benchmark_cache.py
    python benchmarks/bench_benchmark_cache.py --categories bottle carpet --n-train 60

Data: :func:`mvtec_sklearn.datasets.synthetic_root` (or ``--root`` with an MVTec AD copy).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd
from sklearn.pipeline import make_pipeline

from mvtec_sklearn.benchmark import MODEL_REGISTRY, run_benchmark
from mvtec_sklearn.datasets import load_mvtec, synthetic_root
from mvtec_sklearn.metrics import anomaly_scores

MODELS = ["ocsvm-effnet", "iforest-effnet", "lof-effnet", "knn-effnet"]


def _timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def _reference(root, categories, specs):
    """Features computed once per category by hand, then the detectors on them."""
    seconds = {"features": 0.0, "detectors": 0.0}
    for category in categories:
        train = load_mvtec(root, category, split="train").paths
        test = load_mvtec(root, category, split="test").paths
        featurizer = specs[0].build(random_state=0)[0]

        def features(featurizer=featurizer, train=train, test=test):
            featurizer.fit(train)
            return featurizer.transform(train), featurizer.transform(test)

        elapsed, (X_train, X_test) = _timed(features)
        seconds["features"] += elapsed
        for spec in specs:
            detector = spec.build(random_state=0)[1]
            seconds["detectors"] += _timed(
                lambda d=detector: anomaly_scores(d.fit(X_train), X_test)
            )[0]
    return seconds


def _pipelines(root, categories, specs):
    """The naive way: one featurizer + detector pipeline per model."""
    total = 0.0
    for category in categories:
        train = load_mvtec(root, category, split="train").paths
        test = load_mvtec(root, category, split="test").paths
        for spec in specs:
            pipe = make_pipeline(*spec.build(random_state=0))
            total += _timed(lambda p=pipe: anomaly_scores(p.fit(train), test))[0]
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None)
    parser.add_argument("--categories", nargs="+", default=["bottle", "carpet", "grid"])
    parser.add_argument("--n-train", type=int, default=30)
    parser.add_argument("--n-test", type=int, default=30, help="test images (one third good)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    root = args.root or synthetic_root(
        categories=args.categories,
        n_train=args.n_train,
        n_test_good=args.n_test // 3,
        n_test_defect=args.n_test - args.n_test // 3,
    )
    specs = [MODEL_REGISTRY[m] for m in MODELS]
    categories = args.categories

    def runner(cache, out=None):
        return run_benchmark(root, categories=categories, models=MODELS, cache_dir=cache, out=out)

    runner(tempfile.mkdtemp())  # warm-up: imports, weights, file-system cache
    references, colds = [], []
    for _ in range(args.repeat):
        elapsed, parts = _timed(lambda: _reference(root, categories, specs))
        references.append((elapsed, parts))
        colds.append(_timed(lambda: runner(tempfile.mkdtemp()))[0])
    ref, parts = min(references, key=lambda r: r[0])
    cold = min(colds)
    pipelines = _pipelines(root, categories, specs)
    cache = tempfile.mkdtemp()
    runner(cache)
    warm = _timed(lambda: runner(cache))[0]
    with_report = _timed(lambda: runner(cache, out=tempfile.mkdtemp()))[0]
    rows = [
        ("reference: features once + 4 detectors", ref),
        ("  of which features", parts["features"]),
        ("  of which 4 detector fits + scores", parts["detectors"]),
        ("4 independent pipelines (features x4)", pipelines),
        ("run_benchmark, cold cache", cold),
        ("run_benchmark, warm cache", warm),
        ("run_benchmark, warm cache + report/figures", with_report),
    ]
    table = pd.DataFrame(rows, columns=["run", "seconds"])
    table["ratio to reference"] = table["seconds"] / ref
    print(
        f"{len(categories)} categories ({', '.join(categories)}), {args.n_train} train / "
        f"{args.n_test} test images each; 4 detectors ({', '.join(MODELS)}) on "
        f"{specs[0].input} ({specs[0].weights_label()}); best of {args.repeat}"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
