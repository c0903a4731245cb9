"""Explore an MVTec AD-style dataset: counts, per-image statistics, plots, the full report.

Loads one category with its provenance, computes per-image statistics
(size, brightness, contrast, colour, defect area), summarises them per
category, draws a sample grid and writes the complete exploration report
(``report.md`` with its tables and figures, the same as ``mvtec-sklearn summary``).

Run ``python examples/explore_dataset.py`` (synthetic data) or
``python examples/explore_dataset.py --root /path/to/mvtec_anomaly_detection``;
``--quick`` uses the smallest settings (a few seconds).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from mvtec_sklearn.analysis import (  # noqa: E402
    category_table,
    count_table,
    image_statistics,
    plot_sample_grid,
    write_summary_report,
)
from mvtec_sklearn.datasets import list_categories, load_mvtec, synthetic_root  # noqa: E402


def main(argv=None):
    """Run the example; return the path of the written report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MVTec AD folder (default: synthetic data)")
    parser.add_argument("--out", default=None, help="report folder (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)

    root = args.root
    if root is None:
        size = dict(n_train=8, n_test_good=3, n_test_defect=5) if args.quick else {}
        root = synthetic_root(categories=["bottle", "grid", "carpet"], image_size=64, **size)
    categories = list_categories(root)
    if args.quick:
        categories = categories[:2]
    print(f"Categories under {root}: {categories}")

    # one row per image, with provenance (file numbers restart at 000 in every folder)
    frame = pd.concat([load_mvtec(root, c, split="all").frame for c in categories], ignore_index=True)
    print(count_table(frame).to_string())

    stats = image_statistics(frame)
    print(category_table(stats).T.to_string())
    print(stats.groupby(["category", "defect_type"])["defect_area_pct"].mean().round(2).to_string())

    out = args.out or tempfile.mkdtemp(prefix="mvtec_summary_")
    os.makedirs(out, exist_ok=True)
    fig = plot_sample_grid(frame, category=categories[0])
    fig.savefig(os.path.join(out, f"samples_{categories[0]}.png"))

    report = write_summary_report(root, categories=categories, out=out)
    print(f"Report written to {report}")
    return report


if __name__ == "__main__":
    main()
