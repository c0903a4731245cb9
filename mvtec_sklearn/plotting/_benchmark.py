"""Benchmark figures: category x model heatmap, mean per model, mean ranks, ROC curves per category."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes

__all__ = ["plot_score_heatmap", "plot_model_bars", "plot_mean_ranks", "plot_roc_curves"]


def _get_ax(ax, figsize):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _check_columns(frame, name, required):
    """Raise unless ``frame`` is a DataFrame holding the ``required`` columns (named ``name``)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks the column(s) {missing}; available columns: {list(frame.columns)}."
        )


def _check_results(results, metric):
    """The rows of ``results`` with a finite ``metric`` (made numeric), checked for plotting."""
    _check_columns(results, "results", ("category", "model", metric))
    values = pd.to_numeric(results[metric], errors="coerce")
    if not np.isfinite(values).any():
        raise ValueError(f"results has no finite value of {metric!r} to plot.")
    frame = results.assign(**{metric: values})
    return frame[np.isfinite(values)]


def plot_score_heatmap(
    results: pd.DataFrame,
    metric: str = "image_auroc",
    *,
    ax: Axes | None = None,
    cmap: str = "viridis",
    annotate: bool = True,
    mean_row: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Axes:
    """Heatmap of one metric: one row per category, one column per model.

    Parameters
    ----------
    results : DataFrame
        Tidy benchmark results with columns ``category``, ``model`` and ``metric``
        (as returned by :func:`mvtec_sklearn.benchmark.run_benchmark`). Rows whose
        metric is missing (failed jobs, models without anomaly maps) are left blank.
    metric : str, default="image_auroc"
        Column to show.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    cmap : str, default="viridis"
        Colour map.
    annotate : bool, default=True
        Write each value in its cell.
    mean_row : bool, default=True
        Add a last row with the mean over categories of each model.
    vmin, vmax : float, default=None
        Colour limits; by default the data range.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.plotting import plot_score_heatmap
    >>> results = pd.DataFrame({"category": ["bottle", "bottle", "grid", "grid"],
    ...                         "model": ["a", "b", "a", "b"],
    ...                         "image_auroc": [0.9, 0.8, 0.7, 0.95]})
    >>> ax = plot_score_heatmap(results)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['bottle', 'grid', 'mean']
    """
    frame = _check_results(results, metric)
    table = frame.pivot_table(index="category", columns="model", values=metric, aggfunc="mean")
    # categories and models in the order they first appear in results
    table = table.reindex(index=pd.unique(frame["category"]), columns=pd.unique(frame["model"]))
    if mean_row:
        table.loc["mean"] = table.mean(axis=0)
    ax = _get_ax(ax, (1.2 + 0.9 * table.shape[1], 1.0 + 0.4 * table.shape[0]))
    values = table.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(table.shape[1]), labels=list(table.columns), rotation=45, ha="right")
    ax.set_yticks(range(table.shape[0]), labels=list(table.index))
    if annotate:
        lo, hi = np.nanmin(values), np.nanmax(values)
        mid = (lo + hi) / 2
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{values[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="black" if values[i, j] > mid else "white",
                    )
    if mean_row:
        ax.axhline(table.shape[0] - 1.5, color="white", linewidth=2)
    ax.figure.colorbar(image, ax=ax, label=metric)
    ax.set_title(f"{metric} per category and model")
    return ax


def plot_model_bars(
    results: pd.DataFrame,
    metric: str = "image_auroc",
    *,
    ax: Axes | None = None,
    sort: bool = True,
    color: Any = "C0",
) -> Axes:
    """Bar chart of the mean of one metric per model, with the standard deviation over categories.

    Parameters
    ----------
    results : DataFrame
        Tidy benchmark results with columns ``category``, ``model`` and ``metric``.
    metric : str, default="image_auroc"
        Column to show.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    sort : bool, default=True
        Order the models by decreasing mean.
    color : color, default="C0"
        Bar colour.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.plotting import plot_model_bars
    >>> results = pd.DataFrame({"category": ["bottle", "bottle", "grid", "grid"],
    ...                         "model": ["a", "b", "a", "b"],
    ...                         "image_auroc": [0.9, 0.8, 0.7, 0.95]})
    >>> ax = plot_model_bars(results)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['b', 'a']
    """
    frame = _check_results(results, metric)
    stats = frame.groupby("model", sort=False)[metric].agg(["mean", "std", "count"])
    stats["std"] = stats["std"].fillna(0.0)
    if sort:
        stats = stats.sort_values("mean", ascending=False)
    ax = _get_ax(ax, (1.5 + 0.6 * len(stats), 4.0))
    positions = np.arange(len(stats))
    ax.bar(positions, stats["mean"], yerr=stats["std"], capsize=3, color=color)
    ax.set_xticks(positions, labels=list(stats.index), rotation=45, ha="right")
    ax.set_ylabel(f"mean {metric} (± std over categories)")
    ax.set_title(f"{metric}: mean over categories")
    if metric in ("image_auroc", "pixel_auroc", "aupr", "f1_max", "aupro"):
        ax.set_ylim(0, 1.05)
    return ax


def plot_mean_ranks(
    results: pd.DataFrame,
    metric: str = "image_auroc",
    *,
    ax: Axes | None = None,
    color: Any = "C0",
) -> Axes:
    """Mean rank of every model over the categories (1 = best), with Friedman's test.

    Each category ranks the models by ``metric`` (higher is better; ties share
    the mean rank; rows of one category and model, e.g. several seeds, are
    averaged first). Only categories where every model has a value count.
    The title gives the p-value of Friedman's test
    (:func:`scipy.stats.friedmanchisquare`) that all models rank alike,
    when there are at least 3 models and 2 categories.

    Parameters
    ----------
    results : DataFrame
        Tidy benchmark results with columns ``category``, ``model`` and ``metric``.
    metric : str, default="image_auroc"
        Column to rank by.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    color : color, default="C0"
        Bar colour.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.plotting import plot_mean_ranks
    >>> results = pd.DataFrame({"category": ["bottle"] * 3 + ["grid"] * 3,
    ...                         "model": ["a", "b", "c"] * 2,
    ...                         "image_auroc": [0.9, 0.7, 0.8, 0.95, 0.6, 0.7]})
    >>> ax = plot_mean_ranks(results)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['a', 'c', 'b']
    """
    from scipy.stats import friedmanchisquare

    frame = _check_results(results, metric)
    table = frame.pivot_table(index="category", columns="model", values=metric,
                              aggfunc="mean").dropna(axis=0, how="any")
    if table.empty:
        raise ValueError(f"No category has a {metric!r} value for every model.")
    ranks = table.rank(axis=1, ascending=False).mean(axis=0).sort_values()
    ax = _get_ax(ax, (5.0, 1.0 + 0.35 * len(ranks)))
    positions = np.arange(len(ranks))
    ax.barh(positions, ranks.to_numpy(), color=color)
    ax.set_yticks(positions, labels=list(ranks.index))
    ax.invert_yaxis()
    ax.set_xlim(0, table.shape[1] + 0.5)
    ax.set_xlabel(f"mean rank by {metric} over {len(table)} categories (1 = best)")
    title = f"{metric}: mean rank"
    if table.shape[1] >= 3 and table.shape[0] >= 2:
        pvalue = friedmanchisquare(*(table[c].to_numpy() for c in table.columns)).pvalue
        title += f" (Friedman p = {pvalue:.3g})"
    ax.set_title(title)
    return ax


def plot_roc_curves(
    scores: pd.DataFrame,
    category: str | None = None,
    *,
    ax: Axes | None = None,
    models: Sequence[str] | None = None,
) -> Axes:
    """ROC curves of every model on one category, from saved test scores.

    Parameters
    ----------
    scores : DataFrame
        One row per (model, test image) with columns ``model``, ``label``
        (0 good, 1 anomalous), ``anomaly_score`` (higher = more anomalous) and,
        when several categories are present, ``category`` (as returned by
        :func:`mvtec_sklearn.benchmark.load_scores`).
    category : str, default=None
        Category to draw; required when ``scores`` holds several.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    models : list of str, default=None
        Models to draw, in this order; by default all of them.

    Returns
    -------
    ax : matplotlib Axes
        One :class:`sklearn.metrics.RocCurveDisplay` line per model, with its AUC in the legend.

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.plotting import plot_roc_curves
    >>> scores = pd.DataFrame({"model": ["a"] * 4, "label": [0, 0, 1, 1],
    ...                        "anomaly_score": [0.1, 0.4, 0.35, 0.8]})
    >>> ax = plot_roc_curves(scores)
    >>> len(ax.get_lines()) >= 1
    True
    """
    from sklearn.metrics import RocCurveDisplay

    _check_columns(scores, "scores", ("model", "label", "anomaly_score"))
    if "category" in scores.columns:
        present = list(pd.unique(scores["category"]))
        if category is None:
            if len(present) > 1:
                raise ValueError(f"scores holds several categories {present}; pass category=.")
            category = present[0] if present else None
        elif category not in present:
            raise ValueError(f"category {category!r} is not in scores; available: {present}.")
        scores = scores[scores["category"] == category]
    names = list(pd.unique(scores["model"])) if models is None else list(models)
    ax = _get_ax(ax, (5.0, 5.0))
    drawn = 0
    for name in names:
        part = scores[scores["model"] == name]
        if part.empty:
            raise ValueError(f"No scores for model {name!r}.")
        y = part["label"].to_numpy(dtype=int)
        s = part["anomaly_score"].to_numpy(dtype=float)
        if np.unique(y).size < 2 or not np.isfinite(s).all():
            continue
        RocCurveDisplay.from_predictions(y, s, name=str(name), ax=ax, plot_chance_level=drawn == 0)
        drawn += 1
    if drawn == 0:
        raise ValueError(
            "No model has both good and anomalous test images with finite scores to draw."
        )
    ax.set_title(f"ROC curves{'' if category is None else f' — {category}'}")
    return ax
