"""The ``mvtec-sklearn`` command.

Sub-commands
------------
``benchmark``  every category x every model, writes results.csv, a Markdown report and plots
``models``     list the model registry
``summary``    the dataset exploration report (tables, plots, report.md)
``generate``   write the real-photo or the synthetic MVTec-format dataset to a folder
``fit``        train a model on good images, calibrate its thresholds, save it
``predict``    score images with a saved or exported model: scores.csv, overlays, masks
``export``     export a saved model to TorchScript or ONNX

Every sub-command names its dataset folder ``--root``. A user error (a missing
folder, an unknown category or model, a bad option value) is reported in one
line on stderr with exit status 2; a benchmark in which some job failed exits
with status 1. Heavy libraries (torch, matplotlib) are imported by the
sub-command that uses them, so ``--help`` and ``models`` start fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, NoReturn

from mvtec_sklearn import __version__
from mvtec_sklearn._cli_deploy import add_deploy_parsers
from mvtec_sklearn.benchmark import METRICS
from mvtec_sklearn.utils import tune_cpu_allocator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: Errors that are the user's to fix (bad paths, names or values); reported in one line.
USER_ERRORS = (ValueError, OSError, ImportError)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``prog: error: message``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int, expected: str) -> Callable[[str], int]:
    """An argparse ``type``: an int >= ``minimum``, else "expected <expected>, got ..."."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _add_root(parser: argparse._ActionsContainer, *, required: bool = False, help: str) -> None:
    parser.add_argument("--root", required=required, default=None, metavar="DIR", help=help)


def _add_categories(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--categories", nargs="+", default=None, metavar="NAME",
                        help=f"categories to {what} (default: all)")


def _add_random_state(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--random-state", type=int, default=0, metavar="SEED",
                        help=f"seed of {what} (default: %(default)s)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mvtec-sklearn",
        description="scikit-learn-compatible visual anomaly detection on MVTec AD-style data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bench = sub.add_parser("benchmark", help="run every category x every model and write a report",
                           description="Run every category x every model and write results.csv, "
                           "summary.md and plots. Exits with status 1 when a job failed.")
    bench.set_defaults(handler=_benchmark)
    data = bench.add_mutually_exclusive_group()
    _add_root(data, help="MVTec AD folder (default: the built-in dataset named by --dataset)")
    data.add_argument("--dataset", choices=["photos", "synthetic"], default=None,
                      help="built-in dataset, generated once and cached: 'photos' (real "
                      "photographs, the default) or 'synthetic' (rendered)")
    _add_categories(bench, "run")
    bench.add_argument("--models", nargs="+", default=None, metavar="NAME",
                       help="registry names (see `mvtec-sklearn models`) or 'all' "
                       "(default: the representative set)")
    bench.add_argument("--metrics", nargs="+", default=None,
                       choices=METRICS,
                       help="metrics to compute (default: all)")
    bench.add_argument("--out", default="mvtec_results", metavar="DIR",
                       help="output folder (default: %(default)s)")
    bench.add_argument("--n-jobs", type=_positive_int, default=None, metavar="N",
                       help="parallel jobs, each with CPUs/N torch threads "
                       "(default: the number of CPUs, at most 4)")
    bench.add_argument("--backend", choices=["loky", "dask"], default=None,
                       help="parallel backend (default: loky)")
    bench.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="Dask scheduler address (only with --backend dask)")
    bench.add_argument("--image-size", type=_positive_int, default=None, metavar="PIXELS",
                       help="side length images are resized to (default: each model's own)")
    bench.add_argument("--cache-dir", default=None, metavar="DIR",
                       help="feature cache folder (default: OUT/cache)")
    _add_random_state(bench, "every model")
    bench.add_argument("--seeds", type=_positive_int, default=1, metavar="N",
                       help="runs of every stochastic model, seeds random-state, +1, ...; "
                       "the report gives mean ± std (default: %(default)s)")
    bench.add_argument("--n-bootstrap", type=_non_negative_int, default=200, metavar="N",
                       help="bootstrap resamples of the confidence intervals and paired tests "
                       "(0: none; default: %(default)s)")

    models = sub.add_parser("models", help="list the model registry",
                            description="List the benchmark's model registry.")
    models.set_defaults(handler=_models)
    models.add_argument("--default", action="store_true",
                        help="only the representative set run by default")

    summ = sub.add_parser("summary", help="write the dataset exploration report",
                          description="Write the dataset exploration report (tables, plots, report.md).")
    summ.set_defaults(handler=_summary)
    _add_root(summ, help="MVTec AD folder (default: built-in synthetic data)")
    _add_categories(summ, "describe")
    summ.add_argument("--out", default="mvtec_summary", metavar="DIR",
                      help="output folder (default: %(default)s)")
    summ.add_argument("--n-jobs", type=_positive_int, default=1, metavar="N",
                      help="parallel processes reading the images (default: %(default)s)")

    gen = sub.add_parser("generate", help="write the real-photo or the synthetic MVTec-format "
                         "dataset", description="Write the real-photo (default) or the "
                         "synthetic MVTec-format dataset into a folder.")
    gen.set_defaults(handler=_generate)
    _add_root(gen, required=True, help="folder to write the dataset into")
    gen.add_argument("--dataset", choices=["photos", "synthetic"], default="photos",
                     help="which generator (default: %(default)s)")
    _add_categories(gen, "write")
    gen.add_argument("--n-train", type=_positive_int, default=60, metavar="N",
                     help="good training images per category (default: %(default)s)")
    gen.add_argument("--n-test-good", type=_non_negative_int, default=20, metavar="N",
                     help="good test images per category (default: %(default)s)")
    gen.add_argument("--n-test-defect", type=_non_negative_int, default=40, metavar="N",
                     help="defective test images per category (default: %(default)s)")
    gen.add_argument("--image-size", type=_positive_int, default=None, metavar="PIXELS",
                     help="side length of the images (default: 256 for photos, each "
                     "synthetic category's own)")
    gen.add_argument("--overwrite", action="store_true",
                     help="replace category folders that already exist under --root")
    _add_random_state(gen, "the generator")

    add_deploy_parsers(sub)
    return parser


#: Options of ``benchmark`` passed to :func:`~mvtec_sklearn.benchmark.run_benchmark` as they are
#: (each option's ``dest`` is the parameter's name).
_BENCHMARK_OPTIONS = ("root", "dataset", "categories", "models", "metrics", "out", "backend",
                      "scheduler", "image_size", "cache_dir", "random_state", "seeds",
                      "n_bootstrap")


def _benchmark(args: argparse.Namespace) -> int:
    import os

    from mvtec_sklearn.benchmark import run_benchmark

    n_jobs = args.n_jobs if args.n_jobs is not None else min(4, os.cpu_count() or 1)
    try:
        results = run_benchmark(
            **{name: getattr(args, name) for name in _BENCHMARK_OPTIONS},
            n_jobs=n_jobs,
            verbose=True,
        )
    except KeyboardInterrupt:  # run_benchmark has said where the finished jobs are
        return 130
    failed = int((results["status"] != "ok").sum())
    print(f"{len(results) - failed} jobs succeeded, {failed} failed.")
    out = os.path.abspath(args.out)
    print(f"Report written to {os.path.join(out, 'summary.md')} (results: "
          f"{os.path.join(out, 'results.csv')}, figures: {os.path.join(out, 'plots')})")
    if failed:
        print(f"mvtec-sklearn benchmark: {failed} job(s) failed; their errors are in the "
              "'error' column of results.csv.", file=sys.stderr)
        return 1
    return 0


def _models(args: argparse.Namespace) -> int:
    import pandas as pd

    from mvtec_sklearn.benchmark import list_models

    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        print(list_models(default_only=args.default).to_string(index=False))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from mvtec_sklearn.analysis import write_summary_report

    path = write_summary_report(
        root=args.root, categories=args.categories, out=args.out, n_jobs=args.n_jobs, verbose=True
    )
    print(f"Report written to {path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from mvtec_sklearn.datasets import make_mvtec_like, make_mvtec_photos

    make = make_mvtec_photos if args.dataset == "photos" else make_mvtec_like
    sizes = {} if args.image_size is None else {"image_size": args.image_size}
    make(
        args.root,
        categories=args.categories,
        n_train=args.n_train,
        n_test_good=args.n_test_good,
        n_test_defect=args.n_test_defect,
        random_state=args.random_state,
        overwrite=args.overwrite,
        **sizes,
    )
    label = "Real-photo" if args.dataset == "photos" else "Synthetic"
    print(f"{label} MVTec-format dataset written to {args.root}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mvtec-sklearn`` console script.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        The arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 when a benchmark job failed, 2 for a
        user error (reported in one line on stderr), 130 when interrupted.

    Examples
    --------
    >>> from mvtec_sklearn.cli import main
    >>> main(["models", "--default"])  # doctest: +SKIP
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # CPU inference reuses its freed buffers
    if getattr(args, "scheduler", None) is not None and args.backend != "dask":
        parser.error("argument --scheduler: only used with --backend dask")
    try:
        return int(args.handler(args))
    except USER_ERRORS as exc:
        print(f"mvtec-sklearn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
