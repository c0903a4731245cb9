"""The exploration report: tables as CSV and Markdown, plots as PNG, one report.md.

:func:`write_summary_report` computes the statistics once, then writes the
report section by section; each ``_*_section`` function writes its files and
returns its Markdown lines.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

import pandas as pd

from mvtec_sklearn.datasets import list_categories, load_mvtec, synthetic_root
from mvtec_sklearn.utils import (
    atomic_write,
    check_outside_dataset,
    remove_stale_temporaries,
    safe_filename,
)

from . import _plots
from ._markdown import to_markdown
from ._statistics import image_statistics
from ._tables import count_table, feature_table

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["write_summary_report"]

_COUNT_HEADERS = {
    "train_normal": "Train normal",
    "test_normal": "Test normal",
    "test_anomalous": "Test anomalous",
    "n_anomaly_types": "Anomaly types",
}
_FEATURE_HEADERS = {
    "width": "Width (px)",
    "height": "Height (px)",
    "constant_size": "Constant size",
    "channels": "Channels",
    "avg_defect_area_px": "Avg defect area (px)",
    "avg_defect_area_pct": "Avg defect area (%)",
    "avg_brightness": "Avg perceived brightness",
    "avg_contrast": "Avg RMS contrast",
}
_DECIMALS = {
    "avg_defect_area_px": 0, "avg_defect_area_pct": 2, "avg_brightness": 1, "avg_contrast": 1
}


class _Folder:
    """The report folder: ``tables/`` and ``figures/``, every file written atomically."""

    def __init__(self, out):
        self.out = out
        self.tables = os.path.join(out, "tables")
        self.figures = os.path.join(out, "figures")
        for folder in (out, self.tables, self.figures):
            remove_stale_temporaries(folder)

    def csv(self, table, name, **kwargs):
        with atomic_write(os.path.join(self.tables, name), "w") as fh:
            table.to_csv(fh, lineterminator="\n", **kwargs)

    def markdown(self, text, name):
        with atomic_write(os.path.join(self.tables, name), "w") as fh:
            fh.write(text + "\n")

    def figure(self, fig, name):
        """Save and close ``fig``; return its path relative to the report."""
        import matplotlib.pyplot as plt

        try:
            with atomic_write(os.path.join(self.figures, name)) as fh:
                fig.savefig(fh, dpi=110, format="png")
        finally:
            plt.close(fig)
        return f"figures/{name}"


def _load_frames(root, categories):
    if not os.path.isdir(root):
        raise FileNotFoundError(f"MVTec root folder not found: {root!r}")
    available = list(list_categories(root))
    if not available:
        raise ValueError(
            f"No MVTec categories found in {root!r}: expected sub-folders such as "
            "'bottle/train/good' and 'bottle/test/<defect type>'."
        )
    if categories is None:
        categories = available
    else:
        categories = [categories] if isinstance(categories, str) else list(categories)
        unknown = [c for c in categories if c not in available]
        if unknown:
            raise ValueError(f"Categories {unknown} are not in {root!r}; available: {available}.")
    frames = [load_mvtec(root, category, split="all").frame for category in categories]
    return pd.concat(frames, ignore_index=True), categories


def _extremes(table, column, fmt):
    values = table[column].dropna()
    if len(values) < 2:
        return ""
    low, high = values.idxmin(), values.idxmax()
    return f"from {fmt.format(values[low])} ('{low}') to {fmt.format(values[high])} ('{high}')"


def _counts_section(root, categories, stats, counts_md):
    return [
        "# Dataset exploration report",
        "",
        f"Dataset folder: `{root}`  ",
        f"Categories ({len(categories)}): {', '.join(categories)}  ",
        f"Images: {len(stats)} ({int((stats['split'] == 'train').sum())} train, "
        f"{int((stats['split'] == 'test').sum())} test)",
        "",
        "## Image counts",
        "",
        counts_md,
        "",
        "Number of training images (all normal), normal and anomalous test images, and the number "
        "of distinct anomaly types per category. Training data contain no anomalies: detectors "
        "learn what normal looks like and are evaluated on the test split.",
        "",
        "Layout of each category folder (file numbers restart at 000 in every folder, so an "
        "image is identified by category, split, defect type and number together; every row of "
        "`tables/image_statistics.csv` carries that provenance):",
        "",
        "```",
        "<category>/train/good/000.png ...",
        "<category>/test/good/000.png ...",
        "<category>/test/<defect type>/000.png ...",
        "<category>/ground_truth/<defect type>/000_mask.png ...   (white = defect)",
        "```",
        "",
    ]


def _category_figures_section(folder, title, text, plot, stats, categories, kind, headed):
    """A section of one figure per category (with a sub-heading per category when ``headed``)."""
    lines = [f"## {title}", "", text, ""]
    for category in categories:
        name = folder.figure(plot(stats, category), f"{kind}_{safe_filename(category)}.png")
        lines += [f"### {category}", ""] if headed else []
        lines += [f"![{kind} {category}]({name})", ""]
    return lines


def _features_section(features, features_md):
    lines = [
        "## Image and defect features",
        "",
        features_md,
        "",
        "Measures (per image, then averaged over the category): width and height in pixels "
        "(*Constant size*: every image of the category has that size; otherwise the most common "
        "size is shown); *Channels*: 1 when every image is grayscale (a 1-channel file or three "
        "equal channels), else 3; *Avg defect area*: mean number of defect pixels in the "
        "ground-truth masks of the anomalous test images, and the same as a percentage of the "
        "image; *Avg perceived brightness*: mean over pixels of the luminance "
        "Y = 0.299 R + 0.587 G + 0.114 B (0-255); *Avg RMS contrast*: standard deviation of Y over "
        "the pixels (0-127.5).",
        "",
    ]
    largest = _extremes(features, "avg_defect_area_pct", "{:.2f} %")
    facts = [
        (largest, "The average defect area ranges {}."),
        (_extremes(features, "avg_brightness", "{:.1f}"), "Perceived brightness ranges {}."),
        (_extremes(features, "avg_contrast", "{:.1f}"), "RMS contrast ranges {}."),
    ]
    sentence = " ".join(template.format(text) for text, template in facts if text)
    gray = features.index[features["channels"] == 1].tolist()
    if gray:
        sentence += f" Grayscale categories: {', '.join(gray)}."
    if sentence:
        lines += [sentence.strip(), ""]
    return lines


def _density_section(folder, histograms, categories):
    groups = _plots.group_categories(categories)
    density = folder.figure(_plots.plot_channel_density(histograms, groups), "channel_density.png")
    return [
        "## Channel intensity densities",
        "",
        "Distribution of pixel intensities (0-255) of the red, green and blue channels over all "
        "images of each category, in the groups "
        + "; ".join(f"{name} ({', '.join(members)})" for name, members in groups.items())
        + ". The more the three curves overlap, the closer the images are to grayscale "
        "(identical curves are marked R = G = B), a redundancy that allows reducing the input to "
        "one channel.",
        "",
        f"![channel density]({density})",
        "",
    ]


def _figure_section(folder, title, text, plot, stats, name):
    """A section of one figure of ``stats``, or of the reason it cannot be drawn."""
    lines = [f"## {title}", "", text, ""]
    try:
        path = folder.figure(plot(stats), f"{name}.png")
        lines += [f"![{name.replace('_', ' ')}]({path})", ""]
    except ValueError as exc:
        lines += [f"*Not plotted: {exc}*", ""]
    return lines


_SAMPLES_TEXT = (
    "For each category a good test image and anomalous test images of different defect types, "
    "with the ground-truth defect mask overlaid in red."
)
_SCATTER_TEXT = (
    "Pixel sums per channel against perceived brightness, one point per image, normal images "
    "in blue and anomalous ones in red. Where the anomalous points form their own cluster, "
    "simple global statistics already separate part of the defects."
)
_AREA_TEXT = (
    "Distribution of the defect area (percentage of the image covered by the ground-truth "
    "mask) of the anomalous test images per category. Narrow violins near zero mean small, "
    "uniform defects; long tails mean some very large ones."
)
_CORRELATION_TEXT = (
    "Pearson correlation between the per-image features over all images. Strongly "
    "correlated features are redundant; features constant over the whole dataset (for "
    "example a single image size) have no defined correlation and are left out."
)
_FILES_SECTION = [
    "## Files",
    "",
    "Tables: `tables/counts.csv`, `tables/features.csv`, `tables/category_table.csv`, "
    "`tables/image_statistics.csv` (one row per image), `tables/channel_histograms.csv` "
    "(256-bin intensity counts per category and channel), and the Markdown tables "
    "`tables/counts.md`, `tables/features.md`.",
    "",
]


def write_summary_report(
    root: str | os.PathLike[str] | None = None,
    categories: Sequence[str] | None = None,
    out: str | os.PathLike[str] = "mvtec_summary",
    n_jobs: int = 1,
    verbose: bool = False,
    cache_dir: str | os.PathLike[str] | Literal["auto"] | None = "auto",
) -> str:
    """Write the dataset exploration report: tables, plots and ``report.md``.

    Computes :func:`image_statistics` over every image of the chosen categories
    (train and test) and writes into ``out``:

    - ``tables/counts.{csv,md}`` — :func:`count_table`;
    - ``tables/features.{csv,md}`` — :func:`feature_table`;
    - ``tables/category_table.csv`` — both, as :func:`category_table`;
    - ``tables/image_statistics.csv`` — one row per image;
    - ``tables/channel_histograms.csv`` — per-category 256-bin histograms per channel;
    - ``figures/samples_<category>.png`` — :func:`plot_sample_grid` per category;
    - ``figures/channel_density.png`` — :func:`plot_channel_density`;
    - ``figures/scatter_<category>.png`` — :func:`plot_feature_scatter` per category;
    - ``figures/defect_area_violin.png`` — :func:`plot_defect_area_violin`;
    - ``figures/correlation_heatmap.png`` — :func:`plot_correlation_heatmap`;
    - ``report.md`` — all of the above in order, with explanations.

    The violin plot needs at least one anomalous image with a mask and the
    heatmap two features that vary; where that is not so, ``report.md`` says why
    and the PNG is not written.

    Parameters
    ----------
    root : str or os.PathLike or None, default=None
        MVTec AD folder (one sub-folder per category). ``None`` uses the
        built-in synthetic dataset, :func:`mvtec_sklearn.datasets.synthetic_root`.
    categories : list of str or None, default=None
        Categories to include; ``None`` = every category found in ``root``.
    out : str or os.PathLike, default="mvtec_summary"
        Output folder (created); never inside ``root`` (every file is written
        atomically).
    n_jobs : int, default=1
        Parallel jobs for the per-image statistics.
    verbose : bool, default=False
        Progress bars.
    cache_dir : str or os.PathLike or "auto" or None, default="auto"
        Per-image statistics cache; ``"auto"`` = ``<out>/cache``, ``None`` = no cache.

    Returns
    -------
    path : str
        Path of ``report.md``.

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    ValueError
        ``root`` holds no MVTec categories, a requested category is missing, or
        ``out`` / ``cache_dir`` lies inside ``root``.

    Examples
    --------
    >>> from mvtec_sklearn.analysis import write_summary_report
    >>> path = write_summary_report("path/to/mvtec_ad", out="summary")  # doctest: +SKIP
    """
    if root is None:
        root = synthetic_root()
    root = os.fspath(root)
    frame, categories = _load_frames(root, categories)
    out = check_outside_dataset(out, root, what="out")
    if isinstance(cache_dir, str) and cache_dir == "auto":
        cache_dir = os.path.join(out, "cache")
    if cache_dir is not None:
        cache_dir = check_outside_dataset(cache_dir, root, what="cache_dir")
    folder = _Folder(out)

    stats, histograms = image_statistics(
        frame, n_jobs=n_jobs, cache_dir=cache_dir, verbose=verbose, return_histograms=True
    )
    counts = count_table(stats)
    features = feature_table(stats)
    folder.csv(counts, "counts.csv")
    folder.csv(features, "features.csv")
    folder.csv(counts.join(features), "category_table.csv")
    folder.csv(stats, "image_statistics.csv", index=False)
    folder.csv(histograms, "channel_histograms.csv")
    counts_md = to_markdown(counts, _COUNT_HEADERS)
    features_md = to_markdown(features, _FEATURE_HEADERS, _DECIMALS)
    folder.markdown(counts_md, "counts.md")
    folder.markdown(features_md, "features.md")

    lines = [
        *_counts_section(root, categories, stats, counts_md),
        *_category_figures_section(folder, "Sample images", _SAMPLES_TEXT,
                                   _plots.plot_sample_grid, stats, categories, "samples",
                                   headed=False),
        *_features_section(features, features_md),
        *_density_section(folder, histograms, categories),
        *_category_figures_section(folder, "Feature relationships", _SCATTER_TEXT,
                                   _plots.plot_feature_scatter, stats, categories, "scatter",
                                   headed=True),
        *_figure_section(folder, "Anomaly area", _AREA_TEXT, _plots.plot_defect_area_violin,
                         stats, "defect_area_violin"),
        *_figure_section(folder, "Feature correlations", _CORRELATION_TEXT,
                         _plots.plot_correlation_heatmap, stats, "correlation_heatmap"),
        *_FILES_SECTION,
    ]
    path = os.path.join(out, "report.md")
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(lines))
    return path
