"""The exploration report: tables as CSV and Markdown, plots as PNG, one report.md."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from mvtec_sklearn.datasets import list_categories, load_mvtec, synthetic_root
from mvtec_sklearn.utils import (
    atomic_write,
    check_outside_dataset,
    remove_stale_temporaries,
    safe_filename,
)

from ._plots import (
    group_categories,
    plot_channel_density,
    plot_correlation_heatmap,
    plot_defect_area_violin,
    plot_feature_scatter,
    plot_sample_grid,
)
from ._statistics import image_statistics
from ._tables import count_table, feature_table

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["write_summary_report", "to_markdown"]

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


def _format_cell(value, decimals) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:,.{decimals}f}"
    if isinstance(value, (int, np.integer)):
        magnitude = cast("int | np.integer[Any]", abs(value))  # mypy infers object for the union
        return f"{value:,}" if magnitude >= 10000 else str(value)
    if not isinstance(value, str) and pd.isna(value):
        return "–"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(
    table: pd.DataFrame,
    headers: dict[str, str] | None = None,
    decimals: dict[str, int] | int | None = None,
    index: bool = True,
) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    table : DataFrame
        The table.
    headers : dict or None, default=None
        Column name -> header text.
    decimals : dict or int or None, default=None
        Decimals of float columns (per column name, or one int for all; default 2).
    index : bool, default=True
        Write the index as the first column.

    Returns
    -------
    markdown : str

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import to_markdown
    >>> print(to_markdown(pd.DataFrame({"x": [1.234]}, index=pd.Index(["a"], name="category"))))
    | category | x |
    |---|---:|
    | a | 1.23 |
    """
    headers = headers or {}
    frame = table.reset_index() if index else table
    columns = list(frame.columns)

    def ndec(col):
        if isinstance(decimals, int):
            return decimals
        return (decimals or {}).get(col, 2)

    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in columns]
    lines = ["| " + " | ".join(str(headers.get(c, c)) for c in columns) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    for row in frame.itertuples(index=False):
        cells = (_format_cell(v, ndec(c)) for c, v in zip(columns, row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    import matplotlib.pyplot as plt

    if root is None:
        root = synthetic_root()
    root = os.fspath(root)
    frame, categories = _load_frames(root, categories)
    out = check_outside_dataset(out, root, what="out")
    tables_dir = os.path.join(out, "tables")
    figures_dir = os.path.join(out, "figures")
    if isinstance(cache_dir, str) and cache_dir == "auto":
        cache_dir = os.path.join(out, "cache")
    if cache_dir is not None:
        cache_dir = check_outside_dataset(cache_dir, root, what="cache_dir")
    for folder in (out, tables_dir, figures_dir):
        remove_stale_temporaries(folder)

    stats, histograms = image_statistics(
        frame, n_jobs=n_jobs, cache_dir=cache_dir, verbose=verbose, return_histograms=True
    )
    counts = count_table(stats)
    features = feature_table(stats)

    def write_csv(table, name, **kwargs):
        with atomic_write(os.path.join(tables_dir, name), "w") as fh:
            table.to_csv(fh, lineterminator="\n", **kwargs)

    write_csv(counts, "counts.csv")
    write_csv(features, "features.csv")
    write_csv(counts.join(features), "category_table.csv")
    write_csv(stats, "image_statistics.csv", index=False)
    write_csv(histograms, "channel_histograms.csv")
    counts_md = to_markdown(counts, _COUNT_HEADERS)
    features_md = to_markdown(features, _FEATURE_HEADERS, _DECIMALS)
    for name, text in (("counts.md", counts_md), ("features.md", features_md)):
        with atomic_write(os.path.join(tables_dir, name), "w") as fh:
            fh.write(text + "\n")

    def save(fig, name):
        try:
            with atomic_write(os.path.join(figures_dir, name)) as fh:
                fig.savefig(fh, dpi=110, format="png")
        finally:
            plt.close(fig)
        return f"figures/{name}"

    groups = group_categories(categories)
    lines = [
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
        "## Sample images",
        "",
        "For each category a good test image and anomalous test images of different defect types, "
        "with the ground-truth defect mask overlaid in red.",
        "",
    ]
    for category in categories:
        name = save(plot_sample_grid(stats, category), f"samples_{safe_filename(category)}.png")
        lines += [f"![samples {category}]({name})", ""]

    largest = _extremes(features, "avg_defect_area_pct", "{:.2f} %")
    lines += [
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

    density = save(plot_channel_density(histograms, groups), "channel_density.png")
    lines += [
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
        "## Feature relationships",
        "",
        "Pixel sums per channel against perceived brightness, one point per image, normal images "
        "in blue and anomalous ones in red. Where the anomalous points form their own cluster, "
        "simple global statistics already separate part of the defects.",
        "",
    ]
    for category in categories:
        name = save(plot_feature_scatter(stats, category), f"scatter_{safe_filename(category)}.png")
        lines += [f"### {category}", "", f"![scatter {category}]({name})", ""]

    lines += [
        "## Anomaly area",
        "",
        "Distribution of the defect area (percentage of the image covered by the ground-truth "
        "mask) of the anomalous test images per category. Narrow violins near zero mean small, "
        "uniform defects; long tails mean some very large ones.",
        "",
    ]
    try:
        name = save(plot_defect_area_violin(stats), "defect_area_violin.png")
        lines += [f"![defect area violin]({name})", ""]
    except ValueError as exc:
        lines += [f"*Not plotted: {exc}*", ""]

    lines += [
        "## Feature correlations",
        "",
        "Pearson correlation between the per-image features over all images. Strongly "
        "correlated features are redundant; features constant over the whole dataset (for "
        "example a single image size) have no defined correlation and are left out.",
        "",
    ]
    try:
        name = save(plot_correlation_heatmap(stats), "correlation_heatmap.png")
        lines += [f"![correlation heatmap]({name})", ""]
    except ValueError as exc:
        lines += [f"*Not plotted: {exc}*", ""]

    lines += [
        "## Files",
        "",
        "Tables: `tables/counts.csv`, `tables/features.csv`, `tables/category_table.csv`, "
        "`tables/image_statistics.csv` (one row per image), `tables/channel_histograms.csv` "
        "(256-bin intensity counts per category and channel), and the Markdown tables "
        "`tables/counts.md`, `tables/features.md`.",
        "",
    ]
    path = os.path.join(out, "report.md")
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(lines))
    return path
