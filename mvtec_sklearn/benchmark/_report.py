"""The benchmark report: summary.md and its figures, from results.csv and the saved scores/maps."""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

import numpy as np
import pandas as pd

from mvtec_sklearn.analysis import to_markdown
from mvtec_sklearn.utils import atomic_write, check_outside_dataset

from ._spec import MODEL_REGISTRY
from ._results import CI_METRICS, N_OVERLAY, _job_stem, load_results, load_scores, slug

__all__ = ["write_report"]

_TITLES = {
    "image_auroc": "Image AUROC",
    "aupr": "AUPR (image level)",
    "f1_max": "F1-max (image level)",
    "pixel_auroc": "Pixel AUROC (models with anomaly maps)",
    "aupro": "AUPRO at 30 % FPR (models with anomaly maps)",
}


def _metric_table(ok, metric, models):
    values = pd.to_numeric(ok[metric], errors="coerce")
    if not np.isfinite(values).any():
        return None
    table = ok.assign(**{metric: values}).pivot_table(
        index="category", columns="model", values=metric, aggfunc="mean", sort=False
    )
    table = table.reindex(
        index=pd.unique(ok["category"]), columns=[m for m in models if m in table.columns]
    ).dropna(axis=1, how="all")
    table.loc["**mean**"] = table.mean(axis=0)
    table.index.name = "category"
    return table


def _first_seed(ok):
    """One row per (category, model): the run with the smallest random_state."""
    if ok.empty:
        return ok
    order = pd.to_numeric(ok["random_state"], errors="coerce").fillna(0)
    return ok.assign(_seed=order).sort_values("_seed", kind="stable").drop_duplicates(
        ["category", "model"]).drop(columns="_seed").loc[lambda f: f.index.sort_values()]


def _ci_table(first, metric, models):
    """``estimate [low, high]`` per category x model."""
    low, high = f"{metric}_low", f"{metric}_high"
    if low not in first or not np.isfinite(pd.to_numeric(first[low], errors="coerce")).any():
        return None
    cells = first.assign(cell=[
        "" if not np.isfinite(v) else
        (f"{v:.3f}" if not np.isfinite(lo) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]")
        for v, lo, hi in zip(*(pd.to_numeric(first[c], errors="coerce") for c in (metric, low, high)))
    ])
    table = cells.pivot(index="category", columns="model", values="cell")
    return table.reindex(index=pd.unique(first["category"]),
                         columns=[m for m in models if m in table.columns]).fillna("")


def _seed_table(ok, metric, models):
    """``mean ± std`` over seeds per category x model, when some model ran with several seeds."""
    values = ok.assign(**{metric: pd.to_numeric(ok[metric], errors="coerce")})
    stats = values.groupby(["category", "model"], sort=False)[metric].agg(["mean", "std", "count"])
    if not (stats["count"] > 1).any():
        return None
    cells = ["" if not np.isfinite(m) else f"{m:.3f}" if n < 2 else f"{m:.3f} ± {sd:.3f} (n={n})"
             for m, sd, n in zip(stats["mean"], stats["std"], stats["count"])]
    table = pd.Series(cells, index=stats.index).unstack("model")
    return table.reindex(index=pd.unique(ok["category"]),
                         columns=[m for m in models if m in table.columns]).fillna("")


def _defect_type_table(scores, models):
    """Image AUROC of every defect type (vs all good test images), category/type x model."""
    from mvtec_sklearn.metrics import per_defect_type_auroc

    parts = []
    for (category, model), part in scores.groupby(["category", "model"], sort=False):
        if part["label"].nunique() < 2:
            continue
        table = per_defect_type_auroc(part["label"], part["anomaly_score"], part["defect_type"])
        parts.append(pd.DataFrame({"category": category, "defect_type": table.index,
                                   "model": model, "image_auroc": table.to_numpy()}))
    if not parts:
        return None
    frame = pd.concat(parts, ignore_index=True)
    table = frame.pivot_table(index=["category", "defect_type"], columns="model",
                              values="image_auroc", sort=False)
    return table.reindex(columns=[m for m in models if m in table.columns])


def _paired_table(first, scores, n_bootstrap):
    """Per category: the best model against the runner-up by image AUROC, paired bootstrap."""
    from mvtec_sklearn.metrics import image_auroc, paired_bootstrap_test

    rows = []
    values = first.assign(image_auroc=pd.to_numeric(first["image_auroc"], errors="coerce"))
    for category, part in values.groupby("category", sort=False):
        ranked = part[np.isfinite(part["image_auroc"])].sort_values("image_auroc", ascending=False)
        if len(ranked) < 2:
            continue
        best, second = ranked["model"].iloc[0], ranked["model"].iloc[1]
        here = scores[scores["category"] == category]
        a = here[here["model"] == best].set_index("path")
        b = here[here["model"] == second].set_index("path").reindex(a.index)
        if a.empty or b["anomaly_score"].isna().any() or a["label"].nunique() < 2:
            continue
        test = paired_bootstrap_test(image_auroc, a["label"].to_numpy(),
                                     a["anomaly_score"].to_numpy(), b["anomaly_score"].to_numpy(),
                                     n_resamples=n_bootstrap, random_state=0)
        rows.append({"category": category, "best": best, "runner-up": second,
                     "AUROC difference": f"{test.difference:+.3f} [{test.low:+.3f}, {test.high:+.3f}]",
                     "p-value": f"{test.pvalue:.3g}"})
    return pd.DataFrame(rows) if rows else None


def _new_figure(figsize):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def _save(fig, path, dpi=100):
    with atomic_write(path) as fh:
        fig.savefig(fh, dpi=dpi, format="png")


def _plots(out, ok, models, categories):
    """Write every figure; return the report's relative figure paths, grouped."""
    from mvtec_sklearn.plotting import (
        plot_mean_ranks,
        plot_model_bars,
        plot_roc_curves,
        plot_score_heatmap,
    )

    figures = {"heatmaps": [], "bars": [], "ranks": [], "roc": [], "maps": []}
    for metric in ("image_auroc", "pixel_auroc"):
        if metric not in ok or not np.isfinite(pd.to_numeric(ok[metric], errors="coerce")).any():
            continue
        n_models = ok.loc[
            np.isfinite(pd.to_numeric(ok[metric], errors="coerce")), "model"
        ].nunique()
        fig, ax = _new_figure((2.5 + 0.8 * n_models, 1.5 + 0.35 * (len(categories) + 1)))
        plot_score_heatmap(ok, metric=metric, ax=ax, vmin=0.0, vmax=1.0)
        rel = f"plots/heatmap_{metric}.png"
        _save(fig, os.path.join(out, rel))
        figures["heatmaps"].append(rel)
        fig, ax = _new_figure((2.0 + 0.6 * n_models, 4.5))
        plot_model_bars(ok, metric=metric, ax=ax)
        rel = f"plots/bars_{metric}.png"
        _save(fig, os.path.join(out, rel))
        figures["bars"].append(rel)
        if n_models >= 2:
            try:
                fig, ax = _new_figure((5.5, 1.2 + 0.35 * n_models))
                plot_mean_ranks(ok, metric=metric, ax=ax)
            except ValueError:  # no category where every model has a value
                pass
            else:
                rel = f"plots/ranks_{metric}.png"
                _save(fig, os.path.join(out, rel))
                figures["ranks"].append(rel)

    scores = load_scores(out, results=_first_seed(ok))
    for category in categories:
        part = scores[scores["category"] == category]
        if part.empty or part["label"].nunique() < 2:
            continue
        fig, ax = _new_figure((5.5, 5.0))
        plot_roc_curves(
            part, category=category, ax=ax, models=[m for m in models if m in set(part["model"])]
        )
        rel = f"plots/roc/{slug(category)}.png"
        _save(fig, os.path.join(out, rel))
        figures["roc"].append(rel)

    for row in _first_seed(ok).itertuples(index=False):
        stem = _job_stem(row.category, row.model)
        saved, rel = os.path.join(out, "maps", f"{stem}.npz"), f"plots/maps/{stem}.png"
        if not os.path.isfile(saved):
            continue
        figure = os.path.join(out, rel)
        fresh = os.path.isfile(figure) and os.path.getmtime(figure) >= os.path.getmtime(saved)
        if fresh or overlay_figure(saved, figure, config_id=row.config_id):
            figures["maps"].append(rel)
    return figures


def overlay_figure(saved, path, config_id=None):
    """Draw the anomaly-map figure of one job from its saved maps (``maps/<job>.npz``).

    The top-scored test images and the worst-missed defective ones, with their
    anomaly maps and ground-truth outlines
    (:func:`mvtec_sklearn.plotting.plot_anomaly_grid`).

    Parameters
    ----------
    saved : str
        The ``.npz`` file written by :func:`run_benchmark`.
    path : str
        Where to write the PNG.
    config_id : str, default=None
        Draw only if the maps belong to this job configuration.

    Returns
    -------
    bool
        Whether the figure was written.
    """
    import matplotlib.pyplot as plt

    from mvtec_sklearn.datasets import load_images, load_masks
    from mvtec_sklearn.plotting import plot_anomaly_grid

    with np.load(saved, allow_pickle=False) as data:
        data = {k: data[k] for k in data.files}
    if config_id is not None and str(data["config_id"]) != str(config_id):
        return False
    maps = data["maps"].astype(np.float32)
    size = maps.shape[1:]
    images = load_images([str(p) for p in data["paths"]], size=size)
    masks = load_masks([str(p) or None for p in data["mask_paths"]], size=size)
    fig = plot_anomaly_grid(
        images, maps, data["label"], data["anomaly_score"], masks=masks, n=N_OVERLAY
    )
    fig.suptitle(
        str(data["title"]) if "title" in data else os.path.splitext(os.path.basename(saved))[0]
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))  # room for the title above the panel titles
    try:
        _save(fig, path, dpi=72)
    finally:
        plt.close(fig)
    return True


def write_report(
    out: str | os.PathLike[str],
    results: pd.DataFrame | None = None,
    settings: dict[str, Any] | None = None,
    n_bootstrap: int = 200,
) -> str:
    """Write ``summary.md`` and the figures of a benchmark output folder.

    Called at the end of :func:`run_benchmark`; call it yourself to rebuild the
    report from ``results.csv`` and the saved scores and maps (for instance after
    a run was interrupted).

    Parameters
    ----------
    out : str or os.PathLike
        Output folder of :func:`run_benchmark`.
    results : DataFrame, default=None
        Rows to report; by default every job in ``out/results.csv``.
    settings : dict, default=None
        Run settings listed at the top of the report (root, image size, ...).
        With a ``"root"`` entry, ``out`` must lie outside that dataset folder.
    n_bootstrap : int, default=200
        Resamples of the paired bootstrap test between the two best models
        of each category (0 skips the test).

    Returns
    -------
    path : str
        Path of ``summary.md``.

    Notes
    -----
    The report has, per metric, the category x model table (mean over seeds),
    the bootstrap 95 % confidence intervals of image AUROC, pixel AUROC and
    AUPRO (columns ``<metric>_low/_high`` of ``results.csv``), mean ± standard
    deviation over seeds (``run_benchmark(seeds=N)``), the image AUROC of
    every defect type, a paired bootstrap test of the two best models of
    each category on the same test images
    (:func:`mvtec_sklearn.metrics.paired_bootstrap_test`) and the models'
    mean ranks over categories with Friedman's test.

    Files written: ``summary.md``; ``plots/heatmap_<metric>.png`` (category x model),
    ``plots/bars_<metric>.png`` (mean per model, standard deviation over
    categories), ``plots/ranks_<metric>.png`` (mean rank per model), ``plots/roc/<category>.png`` (one ROC curve per model) and
    ``plots/maps/<category>__<model>.png`` (anomaly-map overlays) for the
    models with anomaly maps.

    Examples
    --------
    >>> from mvtec_sklearn.benchmark import write_report
    >>> path = write_report("mvtec_results")  # doctest: +SKIP
    """
    settings = dict(settings or {})
    out = check_outside_dataset(out, settings.get("root"), what="out")
    results = load_results(out) if results is None else results
    if results.empty:
        raise ValueError(f"No benchmark results to report in {out!r}.")
    models = list(pd.unique(results["model"]))
    categories = list(pd.unique(results["category"]))
    ok = results[results["status"] == "ok"]
    failed = results[results["status"] != "ok"]

    lines = ["# mvtec_sklearn benchmark", ""]
    lines.append(
        f"{len(categories)} categories x {len(models)} models = {len(results)} jobs "
        f"({len(ok)} succeeded, {len(failed)} failed), written "
        f"{_dt.datetime.now().isoformat(timespec='seconds')}."
    )
    lines.append("")
    for key, value in settings.items():
        if key == "wall_seconds":
            value = f"{value:.0f} s"
        lines.append(
            f"- **{key.replace('_', ' ')}**: {'model defaults' if value is None else value}"
        )
    lines += [
        "- **anomaly score**: `-score_samples(X)` for every detector (scikit-learn's and ours); "
        "models were fitted on the good training images only.",
        "- Full results (one row per job, with timings and errors): `results.csv`; per-image test "
        "scores: `scores/`.",
        "",
    ]
    for metric, title in _TITLES.items():
        if metric not in ok:
            continue
        table = _metric_table(ok, metric, models)
        if table is None:
            continue
        lines += [f"## {title}", "", to_markdown(table, decimals=3), ""]
        seeds = _seed_table(ok, metric, models)
        if seeds is not None:
            lines += ["Mean ± standard deviation over seeds (n = number of runs):", "",
                      to_markdown(seeds), ""]
        if metric in CI_METRICS:
            intervals = _ci_table(_first_seed(ok), metric, models)
            if intervals is not None:
                lines += ["Bootstrap 95 % confidence intervals (test images resampled within "
                          "each class; first seed):", "", to_markdown(intervals), ""]

    if not ok.empty:
        first = _first_seed(ok)
        scores = load_scores(out, results=first)
        by_type = _defect_type_table(scores, models) if not scores.empty else None
        if by_type is not None:
            lines += ["## Image AUROC per defect type", "",
                      "Each defect type's test images against all good test images (first seed).",
                      "", to_markdown(by_type.reset_index(), decimals=3, index=False), ""]
        paired = _paired_table(first, scores, n_bootstrap) if n_bootstrap and not scores.empty \
            else None
        if paired is not None:
            lines += ["## Is the best model really better?", "",
                      "Paired bootstrap test of image AUROC on the same test images, best model "
                      f"minus runner-up ({n_bootstrap} resamples; difference with 95 % interval; "
                      "a p-value above 0.05 means the data cannot tell them apart).", "",
                      to_markdown(paired, index=False), ""]
        values = pd.to_numeric(first["image_auroc"], errors="coerce")
        ranked = first.assign(image_auroc=values).pivot_table(
            index="category", columns="model", values="image_auroc").dropna(axis=0, how="any")
        if ranked.shape[1] >= 2 and not ranked.empty:
            mean_rank = ranked.rank(axis=1, ascending=False).mean(axis=0).sort_values()
            lines += ["## Mean rank by image AUROC", "",
                      f"Rank of every model in each of the {len(ranked)} categories where all "
                      "have a value (1 = best), averaged.", "",
                      to_markdown(mean_rank.rename("mean rank").to_frame(), decimals=2), ""]

    if not ok.empty:
        timing = ok.assign(
            **{
                c: pd.to_numeric(ok[c], errors="coerce")
                for c in ("fit_seconds", "predict_seconds", "map_seconds", "feature_seconds")
            }
        )
        timing = timing.groupby("model", sort=False)[
            ["feature_seconds", "fit_seconds", "predict_seconds", "map_seconds"]
        ].mean()
        timing = timing.reindex([m for m in models if m in timing.index])
        timing.index.name = "model"
        lines += [
            "## Mean time per category (seconds)",
            "",
            "`feature_seconds`: the shared featurizer on train + test images, computed once per "
            "category and reused by every model with the same featurizer configuration (from the "
            "disk cache when "
            "available); `fit`/`predict`/`map`: the detector alone.",
            "",
            to_markdown(timing, decimals=2),
            "",
        ]

    info = []
    for name in models:
        part = results[results["model"] == name].iloc[0]
        spec = MODEL_REGISTRY.get(name)
        info.append(
            {
                "model": name,
                "input": part["input"],
                "weights": part["weights"],
                "description": spec.description if spec is not None else "user-defined estimator",
            }
        )
    lines += ["## Models", "", to_markdown(pd.DataFrame(info), index=False), ""]

    if not failed.empty:
        lines += [
            "## Failed jobs",
            "",
            "Tracebacks are in `errors/`.",
            "",
            to_markdown(failed[["category", "model", "error"]], index=False),
            "",
        ]

    figures = _plots(out, ok, models, categories) if not ok.empty else {}
    sections = {
        "heatmaps": "Category x model heatmaps",
        "bars": "Mean per model",
        "ranks": "Mean rank per model",
        "roc": "ROC curves per category",
        "maps": "Anomaly-map overlays",
    }
    if any(figures.values()):
        lines += ["## Figures", ""]
        for key, title in sections.items():
            if figures.get(key):
                lines += [f"### {title}", ""]
                if key in ("heatmaps", "bars", "ranks"):
                    lines += [f"![{os.path.basename(p)}]({p})" for p in figures[key]]
                else:
                    lines += [
                        f"- [{os.path.splitext(os.path.basename(p))[0]}]({p})" for p in figures[key]
                    ]
                lines.append("")
    path = os.path.join(out, "summary.md")
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(lines))
    return path
