"""Exploration plots; every function returns a matplotlib Figure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import pandas as pd

from mvtec_sklearn.datasets import CATEGORY_GROUPS, read_image, read_mask

from ._frames import _as_frame, _missing
from ._statistics import CHANNELS, MEASURE_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from sklearn.utils import Bunch

__all__ = [
    "group_categories",
    "plot_channel_density",
    "plot_feature_scatter",
    "plot_defect_area_violin",
    "plot_correlation_heatmap",
    "plot_sample_grid",
]

_CHANNEL_COLORS = {"R": "tab:red", "G": "tab:green", "B": "tab:blue"}
_NORMAL_COLOR = "tab:blue"
_ANOMALOUS_COLOR = "tab:red"
_LABELS = {
    "width": "Width (px)",
    "height": "Height (px)",
    "channels": "Channels",
    "brightness": "Perceived brightness",
    "contrast": "RMS contrast",
    "defect_area_px": "Defect area (px)",
    "defect_area_pct": "Defect area (%)",
    **{f"mean_{c}": f"Mean {c.upper()}" for c in "rgb"},
    **{f"std_{c}": f"Std {c.upper()}" for c in "rgb"},
    **{f"sum_{c}": f"Pixel sum {c.upper()}" for c in "rgb"},
}


def _pretty(column: str) -> str:
    return _LABELS.get(column, column)


def group_categories(categories: Iterable[str]) -> dict[str, list[str]]:
    """Sort categories into the dataset's groups.

    Parameters
    ----------
    categories : iterable of str
        Category names.

    Returns
    -------
    groups : dict
        Group name -> the given categories in it, in the order of
        :data:`mvtec_sklearn.datasets.CATEGORY_GROUPS` ("texture-based",
        "industrial components", "consumer products", "edible"), followed by
        ``"other"`` for categories in no group. Empty groups are left out.

    Examples
    --------
    >>> from mvtec_sklearn.analysis import group_categories
    >>> group_categories(["bottle", "grid", "mine"])
    {'industrial components': ['grid'], 'consumer products': ['bottle'], 'other': ['mine']}
    """
    categories = list(dict.fromkeys(str(c) for c in categories))
    groups = {}
    placed = set()
    for name, members in CATEGORY_GROUPS.items():
        present = [c for c in members if c in categories and c not in placed]
        if present:
            groups[name] = present
            placed.update(present)
    other = [c for c in categories if c not in placed]
    if other:
        groups["other"] = other
    return groups


def plot_channel_density(
    histograms: pd.DataFrame, groups: dict[str, list[str]] | None = None, max_columns: int = 5
) -> Figure:
    """Channel intensity density (R, G, B) per category, one panel row per group.

    Parameters
    ----------
    histograms : DataFrame
        The per-category histograms returned by
        ``image_statistics(..., return_histograms=True)``: index
        ``(category, channel)``, 256 intensity columns.
    groups : dict or None, default=None
        Group name -> categories. ``None`` uses :func:`group_categories` of the
        categories present.
    max_columns : int, default=5
        Panels per row; a larger group wraps onto more rows.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One sub-figure per group (its title is the group name) with one axes per
        category: x "Intensity" (0-255), y "Density" (fraction of the category's
        pixels at that intensity), one line per channel. Identical R, G and B
        curves (marked "R = G = B" in the title) mean grayscale images.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mvtec_sklearn.analysis import plot_channel_density
    >>> index = pd.MultiIndex.from_product([["grid"], ["R", "G", "B"]],
    ...                                    names=["category", "channel"])
    >>> hist = pd.DataFrame(np.ones((3, 256), int), index=index)
    >>> [ax.get_title() for ax in plot_channel_density(hist).axes]
    ['grid (R = G = B)']
    """
    import matplotlib.pyplot as plt

    if not isinstance(histograms, pd.DataFrame) or histograms.index.nlevels != 2:
        raise ValueError(
            "histograms must be the (category, channel)-indexed DataFrame returned by "
            "image_statistics(..., return_histograms=True)."
        )
    present = list(dict.fromkeys(histograms.index.get_level_values(0)))
    if groups is None:
        groups = group_categories(present)
    else:
        unknown = [c for members in groups.values() for c in members if c not in present]
        if unknown:
            raise ValueError(f"No histograms for categories {unknown}; available: {present}.")
        groups = {name: list(members) for name, members in groups.items() if len(members)}
    if not groups:
        raise ValueError("No categories to plot.")
    ncols = max(1, min(max_columns, max(len(m) for m in groups.values())))
    rows = [int(np.ceil(len(m) / ncols)) for m in groups.values()]
    fig = plt.figure(figsize=(3.2 * ncols, 2.9 * sum(rows)), layout="constrained")
    subfigs = fig.subfigures(len(groups), 1, height_ratios=rows)  # one group: a bare SubFigure
    subfigs = np.atleast_1d(subfigs)  # type: ignore[arg-type]  # wraps a SubFigure; stubs: arrays
    x = np.arange(256)
    for subfig, (name, members), nrows in zip(subfigs, groups.items(), rows):
        subfig.suptitle(name, fontweight="bold")
        axes = np.atleast_1d(subfig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, category in zip(axes, members):
            counts = histograms.loc[category].reindex(list(CHANNELS)).to_numpy(dtype=float)
            totals = counts.sum(axis=1, keepdims=True)
            density = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
            for channel, curve in zip(CHANNELS, density):
                ax.plot(x, curve, color=_CHANNEL_COLORS[channel], label=channel, lw=1.2, alpha=0.8)
            gray = np.array_equal(counts[0], counts[1]) and np.array_equal(counts[1], counts[2])
            ax.set_title(f"{category} (R = G = B)" if gray else category)
            ax.set_xlim(0, 255)
            ax.set_xlabel("Intensity")
            ax.set_ylabel("Density")
        axes[0].legend(loc="upper right", fontsize="small")
        for ax in axes[len(members):]:
            ax.remove()
    return fig


def plot_feature_scatter(
    stats: pd.DataFrame,
    category: str | None = None,
    x: str | Sequence[str] = ("sum_r", "sum_g", "sum_b"),
    y: str = "brightness",
) -> Figure:
    """Scatter plots of per-image features, normal vs anomalous in two colours.

    Parameters
    ----------
    stats : DataFrame
        The result of :func:`image_statistics`.
    category : str or None, default=None
        Plot this category's images; ``None`` plots every row.
    x : sequence of str, default=("sum_r", "sum_g", "sum_b")
        Columns on the x-axes, one panel each (default: pixel sums per channel).
    y : str, default="brightness"
        Column on the y-axis (default: perceived brightness).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per ``x`` column; normal images (``label != 1``) in blue,
        anomalous images (``label == 1``) in red, with a legend.

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import plot_feature_scatter
    >>> stats = pd.DataFrame({"category": ["a"] * 3, "label": [0, 0, 1], "sum_r": [1, 2, 3],
    ...                       "sum_g": [1, 2, 3], "sum_b": [1, 2, 3], "brightness": [4, 5, 9]})
    >>> [ax.get_xlabel() for ax in plot_feature_scatter(stats, "a").axes]
    ['Pixel sum R', 'Pixel sum G', 'Pixel sum B']
    """
    import matplotlib.pyplot as plt

    x = [x] if isinstance(x, str) else list(x)
    missing = [c for c in ("label", *x, y) if c not in stats.columns]
    if missing:
        raise ValueError(f"stats lacks the columns {missing}; pass the result of image_statistics.")
    data = _select_category(stats, category)
    anomalous = pd.to_numeric(data["label"], errors="coerce").eq(1).to_numpy()
    fig, axes = plt.subplots(
        1, len(x), figsize=(4.2 * len(x), 3.8), layout="constrained", squeeze=False
    )
    for ax, column in zip(axes.ravel(), x):
        kinds = ((~anomalous, _NORMAL_COLOR, "normal"), (anomalous, _ANOMALOUS_COLOR, "anomalous"))
        for mask, color, name in kinds:
            ax.scatter(data.loc[mask, column], data.loc[mask, y], s=14, alpha=0.7, color=color,
                       label=f"{name} ({int(mask.sum())})", edgecolors="none")
        ax.set_xlabel(_pretty(column))
        ax.set_ylabel(_pretty(y))
    axes.ravel()[0].legend(fontsize="small")
    fig.suptitle(f"Feature relationships: {category if category is not None else 'all images'}")
    return fig


def _select_category(frame, category):
    if category is None:
        return frame
    rows = frame[frame["category"].astype(str) == str(category)]
    if rows.empty:
        available = sorted(frame["category"].dropna().astype(str).unique())
        raise ValueError(f"No images of category {category!r}; available: {available}.")
    return rows


def plot_defect_area_violin(stats: pd.DataFrame, categories: Sequence[str] | None = None) -> Figure:
    """Violin plot of the defect-area percentage of the anomalous images, per category.

    Parameters
    ----------
    stats : DataFrame
        The result of :func:`image_statistics`.
    categories : list of str or None, default=None
        Categories in plotting order; ``None`` = every category with anomalous
        images, sorted.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One violin per category over the anomalous images' ``defect_area_pct``
        (each image also drawn as a dot); x "Category", y "Defect area (% of image)".

    Raises
    ------
    ValueError
        When no anomalous image has a known defect area.

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import plot_defect_area_violin
    >>> stats = pd.DataFrame({"category": ["a", "a", "b", "b"], "label": [1, 1, 1, 1],
    ...                       "defect_area_pct": [1.0, 2.0, 5.0, 9.0]})
    >>> fig = plot_defect_area_violin(stats)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b']
    """
    import matplotlib.pyplot as plt

    missing = [c for c in ("category", "label", "defect_area_pct") if c not in stats.columns]
    if missing:
        raise ValueError(f"stats lacks the columns {missing}; pass the result of image_statistics.")
    anomalous = pd.to_numeric(stats["label"], errors="coerce").eq(1)
    data = stats[anomalous & stats["defect_area_pct"].notna()]
    if data.empty:
        raise ValueError("No anomalous image with a known defect area (mask) to plot.")
    by_category = {
        str(c): g["defect_area_pct"].to_numpy(float) for c, g in data.groupby("category")
    }
    if categories is None:
        categories = sorted(by_category)
    else:
        unknown = [c for c in categories if c not in by_category]
        if unknown:
            raise ValueError(f"No anomalous images with masks for categories {unknown}.")
    values = [by_category[c] for c in categories]
    positions = np.arange(1, len(categories) + 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(categories) + 2), 4.5), layout="constrained")
    spread = [i for i, v in enumerate(values) if np.ptp(v) > 0]
    if spread:
        parts = ax.violinplot([values[i] for i in spread], positions=positions[spread],
                              showmedians=True, widths=0.8)
        for body in cast("list[PolyCollection]", parts["bodies"]):  # stubs: one Collection
            body.set_facecolor(_ANOMALOUS_COLOR)
            body.set_alpha(0.35)
    rng = np.random.default_rng(0)
    for pos, v in zip(positions, values):
        jitter = rng.uniform(-0.12, 0.12, len(v))
        ax.scatter(pos + jitter, v, s=8, color="black", alpha=0.5, zorder=3)
    ax.set_xticks(positions, categories, rotation=45 if len(categories) > 4 else 0,
                  ha="right" if len(categories) > 4 else "center")
    ax.set_xlabel("Category")
    ax.set_ylabel("Defect area (% of image)")
    ax.set_title("Anomaly area per category (anomalous images)")
    ax.set_ylim(bottom=0)
    return fig


def plot_correlation_heatmap(
    stats: pd.DataFrame,
    columns: Sequence[str] | None = None,
    method: Literal["pearson", "spearman", "kendall"] = "pearson",
) -> Figure:
    """Correlation heatmap of per-image features.

    Parameters
    ----------
    stats : DataFrame
        The result of :func:`image_statistics`.
    columns : list of str or None, default=None
        Features to correlate; ``None`` = every measure of
        :func:`image_statistics`. Columns that are constant over the rows (whose
        correlation is undefined) are left out.
    method : {"pearson", "spearman", "kendall"}, default="pearson"
        Passed to :meth:`pandas.DataFrame.corr`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        A square heatmap (colour scale -1 to 1, values written in the cells)
        with the feature names on both axes and a colour bar.

    Raises
    ------
    ValueError
        Fewer than two non-constant features.

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import plot_correlation_heatmap
    >>> stats = pd.DataFrame({"brightness": [1, 2, 3], "contrast": [3, 1, 2], "width": [8, 8, 8]})
    >>> [t.get_text() for t in plot_correlation_heatmap(stats).axes[0].get_yticklabels()]
    ['Perceived brightness', 'RMS contrast']
    """
    import matplotlib.pyplot as plt

    if columns is None:
        columns = [c for c in MEASURE_COLUMNS if c in stats.columns]
    else:
        missing = [c for c in columns if c not in stats.columns]
        if missing:
            raise ValueError(f"stats lacks the columns {missing}.")
    numeric = stats[list(columns)].apply(pd.to_numeric, errors="coerce")
    varying = [c for c in numeric.columns if numeric[c].nunique(dropna=True) > 1]
    if len(varying) < 2:
        raise ValueError(
            f"Need at least two features that vary across images to correlate; got {varying}."
        )
    corr = numeric[varying].corr(method=method).to_numpy()
    n = len(varying)
    fig, ax = plt.subplots(figsize=(0.55 * n + 3.5, 0.55 * n + 2.5), layout="constrained")
    im = ax.imshow(corr, cmap="coolwarm", vmin=-1, vmax=1)
    labels = [_pretty(c) for c in varying]
    ax.set_xticks(range(n), labels, rotation=60, ha="right")
    ax.set_yticks(range(n), labels)
    fontsize = 7 if n > 10 else 9
    for i in range(n):
        for j in range(n):
            if np.isfinite(corr[i, j]):
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=fontsize,
                        color="white" if abs(corr[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label=f"{method.capitalize()} correlation", shrink=0.8)
    ax.set_title("Correlation of per-image features")
    return fig


def plot_sample_grid(
    X: Bunch | Sequence[Bunch] | pd.DataFrame,
    category: str | None = None,
    n_anomalous: int = 4,
    random_state: int | np.random.RandomState | None = 0,
) -> Figure:
    """A good image and anomalous images with their defect masks overlaid.

    Parameters
    ----------
    X : Bunch, list of Bunch, or DataFrame
        Images with provenance (``load_mvtec`` results, or the frame / result of
        :func:`image_statistics`).
    category : str or None, default=None
        The category to show; may be ``None`` when ``X`` holds one category.
    n_anomalous : int, default=4
        Number of anomalous images; they cycle through the defect types so that
        as many types as possible are shown.
    random_state : int, RandomState instance or None, default=0
        Which images of each kind are drawn.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One row of axes: the good image (title "good"), then each anomalous
        image with its mask in translucent red and a red outline (title = its
        defect type).

    Examples
    --------
    >>> import numpy as np, os, tempfile, pandas as pd
    >>> from PIL import Image
    >>> from mvtec_sklearn.analysis import plot_sample_grid
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("good.png", "bad.png", "mask.png"):
    ...     Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(os.path.join(folder, name))
    >>> frame = pd.DataFrame({"category": ["a", "a"], "split": ["test", "test"],
    ...     "defect_type": ["good", "crack"], "label": [0, 1],
    ...     "path": [os.path.join(folder, "good.png"), os.path.join(folder, "bad.png")],
    ...     "mask_path": [None, os.path.join(folder, "mask.png")]})
    >>> [ax.get_title() for ax in plot_sample_grid(frame).axes]
    ['good', 'crack']
    """
    import matplotlib.pyplot as plt
    from sklearn.utils import check_random_state

    frame = _as_frame(X)
    if category is None:
        present = frame["category"].dropna().astype(str).unique()
        if len(present) > 1:
            raise ValueError(f"X holds several categories {sorted(present)}; pass category=.")
        category = present[0] if len(present) else None
    data = _select_category(frame, category)
    rng = check_random_state(random_state)
    label = pd.to_numeric(data["label"], errors="coerce")
    good = data[label == 0]
    if (good["split"] == "test").any():
        good = good[good["split"] == "test"]
    picks = []
    if len(good):
        picks.append(good.iloc[rng.randint(len(good))])
    anomalous = data[label == 1]
    by_type = {t: list(rng.permutation(len(g))) for t, g in anomalous.groupby("defect_type")}
    groups = dict(list(anomalous.groupby("defect_type")))
    while len(picks) < (1 if len(good) else 0) + n_anomalous and any(by_type.values()):
        for defect_type in sorted(by_type):
            if by_type[defect_type] and len(picks) < (1 if len(good) else 0) + n_anomalous:
                picks.append(groups[defect_type].iloc[by_type[defect_type].pop()])
    if not picks:
        raise ValueError(f"No labelled images to show for category {category!r}.")
    fig, axes = plt.subplots(1, len(picks), figsize=(2.6 * len(picks), 3.0), layout="constrained",
                             squeeze=False)
    for ax, row in zip(axes.ravel(), picks):
        image = read_image(row["path"], mode="RGB")
        ax.imshow(image)
        title = "good" if row["label"] == 0 else str(row["defect_type"])
        if row["label"] == 1 and not _missing(row["mask_path"]):
            mask = read_mask(row["mask_path"], size=image.shape[:2])
            overlay = np.zeros((*mask.shape, 4))
            overlay[mask] = (1.0, 0.0, 0.0, 0.4)
            ax.imshow(overlay)
            if mask.any() and not mask.all():
                ax.contour(mask, levels=[0.5], colors="red", linewidths=0.8)
        elif row["label"] == 1:
            title += " (no mask)"
        ax.set_title(title, fontsize="medium")
        ax.set_axis_off()
    fig.suptitle(f"{category}: samples" if category is not None else "Samples")
    return fig
