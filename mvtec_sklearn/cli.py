"""The ``mvtec-sklearn`` command.

Sub-commands
------------
``benchmark``  every category x every model, writes results.csv, a Markdown report and plots
``models``     list the model registry
``summary``    the dataset exploration report (tables, plots, report.md)
``generate``   write the real-photo or the synthetic MVTec-format dataset to a folder
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mvtec-sklearn",
        description="scikit-learn-compatible visual anomaly detection on MVTec AD-style data.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("benchmark", help="run every category x every model and write a report")
    data = bench.add_mutually_exclusive_group()
    data.add_argument("--root", default=None,
                      help="MVTec AD folder (default: the built-in dataset named by --dataset)")
    data.add_argument("--dataset", choices=["photos", "synthetic"], default=None,
                      help="built-in dataset, generated once and cached: 'photos' (real "
                      "photographs, the default) or 'synthetic' (rendered)")
    bench.add_argument("--categories", nargs="+", default=None, help="categories to run (default: all found)")
    bench.add_argument("--models", nargs="+", default=None,
                       help="registry names (see `mvtec-sklearn models`) or 'all' "
                       "(default: the representative set)")
    bench.add_argument("--metrics", nargs="+", default=None,
                       choices=["image_auroc", "aupr", "f1_max", "pixel_auroc", "aupro"],
                       help="metrics to compute (default: all)")
    bench.add_argument("--out", default="mvtec_results", help="output folder (default: %(default)s)")
    bench.add_argument("--n-jobs", type=int, default=None,
                       help="parallel jobs, each with CPUs/N torch threads "
                       "(default: the number of CPUs, at most 4)")
    bench.add_argument("--backend", choices=["loky", "dask"], default=None, help="parallel backend")
    bench.add_argument("--scheduler", default=None, help="Dask scheduler address (with --backend dask)")
    bench.add_argument("--image-size", type=int, default=None, help="side length images are resized to")
    bench.add_argument("--cache-dir", default=None, help="feature cache folder (default: OUT/cache)")
    bench.add_argument("--random-state", type=int, default=0)

    models = sub.add_parser("models", help="list the model registry")
    models.add_argument("--default", action="store_true", help="only the representative set run by default")

    summ = sub.add_parser("summary", help="write the dataset exploration report")
    summ.add_argument("root", nargs="?", default=None, help="MVTec AD folder (default: built-in synthetic data)")
    summ.add_argument("--categories", nargs="+", default=None)
    summ.add_argument("--out", default="mvtec_summary", help="output folder (default: %(default)s)")
    summ.add_argument("--n-jobs", type=int, default=1)

    gen = sub.add_parser("generate", help="write the real-photo or the synthetic MVTec-format dataset")
    gen.add_argument("root", help="folder to write into")
    gen.add_argument("--dataset", choices=["photos", "synthetic"], default="photos",
                     help="which generator (default: %(default)s)")
    gen.add_argument("--categories", nargs="+", default=None)
    gen.add_argument("--image-size", type=int, default=None)
    gen.add_argument("--random-state", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mvtec-sklearn`` console script."""
    args = _build_parser().parse_args(argv)
    if args.command == "benchmark":
        import os

        from mvtec_sklearn.benchmark import run_benchmark

        n_jobs = args.n_jobs if args.n_jobs is not None else min(4, os.cpu_count() or 1)
        try:
            results = run_benchmark(
                root=args.root,
                categories=args.categories,
                models=args.models,
                metrics=args.metrics,
                out=args.out,
                n_jobs=n_jobs,
                backend=args.backend,
                scheduler=args.scheduler,
                image_size=args.image_size,
                cache_dir=args.cache_dir,
                random_state=args.random_state,
                verbose=True,
                dataset=args.dataset,
            )
        except KeyboardInterrupt:  # run_benchmark has said where the finished jobs are
            return 130
        failed = int((results["status"] != "ok").sum())
        print(f"{len(results) - failed} jobs succeeded, {failed} failed.")
        out = os.path.abspath(args.out)
        print(f"Report written to {os.path.join(out, 'summary.md')} (results: "
              f"{os.path.join(out, 'results.csv')}, figures: {os.path.join(out, 'plots')})")
    elif args.command == "models":
        import pandas as pd

        from mvtec_sklearn.benchmark import list_models

        with pd.option_context("display.max_colwidth", 120, "display.width", 250):
            print(list_models(default_only=args.default).to_string(index=False))
    elif args.command == "summary":
        from mvtec_sklearn.analysis import write_summary_report

        path = write_summary_report(
            root=args.root, categories=args.categories, out=args.out, n_jobs=args.n_jobs, verbose=True
        )
        print(f"Report written to {path}")
    elif args.command == "generate":
        from mvtec_sklearn.datasets import make_mvtec_like, make_mvtec_photos

        make = make_mvtec_photos if args.dataset == "photos" else make_mvtec_like
        kwargs = {"categories": args.categories, "random_state": args.random_state}
        if args.image_size is not None:
            kwargs["image_size"] = args.image_size
        make(args.root, **{k: v for k, v in kwargs.items() if v is not None})
        label = "Real-photo" if args.dataset == "photos" else "Synthetic"
        print(f"{label} MVTec-format dataset written to {args.root}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
