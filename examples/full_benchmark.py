"""The full benchmark: every category x every model, with its report.

Calls :func:`mvtec_sklearn.benchmark.run_benchmark`, the function behind
``mvtec-sklearn benchmark``. Each (category, model) job fits on the good
training images and scores the test images; the results are appended to
``OUT/results.csv`` as jobs finish (rerunning the same command resumes), and
``OUT/summary.md`` gathers the tables (image AUROC, AUPR, F1-max, pixel AUROC,
AUPRO, timings) and figures (heatmap, bars, ROC curves, anomaly-map grids).

By default the representative model set runs on every category found; the
registry is listed by ``mvtec-sklearn models``. Run
``python examples/full_benchmark.py [--root MVTEC_FOLDER] [--models patchcore padim] [--n-jobs 2]``;
``--quick`` runs three fast models on two synthetic categories at 64 px.
"""

from __future__ import annotations

import argparse
import tempfile

import matplotlib

matplotlib.use("Agg")

from mvtec_sklearn.benchmark import list_models, run_benchmark  # noqa: E402
from mvtec_sklearn.datasets import synthetic_root  # noqa: E402

QUICK_MODELS = ["lof-pixels", "iforest-handcrafted", "padim"]


def main(argv=None):
    """Run the example; return the results DataFrame."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None,
                        help="MVTec AD folder (default: the built-in real-photo set; "
                        "with --quick, synthetic data)")
    parser.add_argument("--categories", nargs="+", default=None, help="default: every category found")
    parser.add_argument("--models", nargs="+", default=None, help="registry names (default: representative set)")
    parser.add_argument("--image-size", type=int, default=None, help="default: each model's own; quick 64")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="output folder (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)

    root, categories, models, image_size = args.root, args.categories, args.models, args.image_size
    if args.quick:
        root = root or synthetic_root(categories=["bottle", "grid"], n_train=10, n_test_good=4,
                                      n_test_defect=6, image_size=64)
        categories = categories or ["bottle", "grid"]
        models = models or QUICK_MODELS
        image_size = image_size or 64
    registry = list_models()
    chosen = registry[registry["default"]] if models is None else registry[registry["name"].isin(models)]
    print(chosen[["name", "input", "has_anomaly_map"]].to_string(index=False))

    out = args.out or tempfile.mkdtemp(prefix="mvtec_benchmark_")
    results = run_benchmark(root=root, categories=categories, models=models, image_size=image_size,
                            n_jobs=args.n_jobs, out=out, random_state=0)
    table = results.pivot(index="category", columns="model", values="image_auroc")
    print(f"Image AUROC\n{table.round(3).to_string()}")
    failed = results[results["status"] != "ok"]
    for row in failed.itertuples():
        print(f"{row.category} / {row.model} failed: {row.error}")
    print(f"Report: {out}/summary.md")
    return results


if __name__ == "__main__":
    main()
