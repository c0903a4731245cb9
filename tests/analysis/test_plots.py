"""Plots render with Agg and carry the expected axes and labels."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from mvtec_sklearn.analysis import (
    group_categories,
    image_statistics,
    plot_channel_density,
    plot_correlation_heatmap,
    plot_defect_area_violin,
    plot_feature_scatter,
    plot_sample_grid,
)
from mvtec_sklearn.datasets import CATEGORY_GROUPS, load_mvtec

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def stats_and_hist(mvtec_root):
    frames = [load_mvtec(mvtec_root, c, split="all").frame for c in ("bottle", "grid", "carpet")]
    return image_statistics(pd.concat(frames, ignore_index=True), return_histograms=True)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_group_categories():
    groups = group_categories(["zipper", "bottle", "pill", "grid", "unknown_thing"])
    assert list(groups)[-1] == "other" and groups["other"] == ["unknown_thing"]
    for name, members in groups.items():
        if name != "other":
            assert set(members) <= set(CATEGORY_GROUPS[name])
    assert sorted(c for m in groups.values() for c in m) == sorted(
        ["zipper", "bottle", "pill", "grid", "unknown_thing"]
    )


def test_channel_density(stats_and_hist):
    _, hist = stats_and_hist
    fig = plot_channel_density(hist)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    titles = sorted(ax.get_title().split(" ")[0] for ax in fig.axes)
    assert titles == ["bottle", "carpet", "grid"]
    group_titles = {sf.get_suptitle() for sf in fig.subfigs}
    assert group_titles == set(group_categories(["bottle", "carpet", "grid"]))
    for ax in fig.axes:
        assert ax.get_xlabel() == "Intensity" and ax.get_ylabel() == "Density"
        assert len(ax.get_lines()) == 3
        for line in ax.get_lines():
            assert line.get_ydata().sum() == pytest.approx(1.0)  # densities
    # the 1-channel category is marked as grayscale
    gray = [ax for ax in fig.axes if ax.get_title().startswith("grid")]
    stats, _ = stats_and_hist
    if (stats.loc[stats["category"] == "grid", "channels"] == 1).all():
        assert "R = G = B" in gray[0].get_title()
    fig.canvas.draw()
    with pytest.raises(ValueError, match="No histograms"):
        plot_channel_density(hist, groups={"g": ["nope"]})


def test_feature_scatter(stats_and_hist):
    stats, _ = stats_and_hist
    fig = plot_feature_scatter(stats, "bottle")
    assert [ax.get_xlabel() for ax in fig.axes] == ["Pixel sum R", "Pixel sum G", "Pixel sum B"]
    assert all(ax.get_ylabel() == "Perceived brightness" for ax in fig.axes)
    n_normal = int(((stats["category"] == "bottle") & (stats["label"] == 0)).sum())
    n_bad = int(((stats["category"] == "bottle") & (stats["label"] == 1)).sum())
    offsets = [len(c.get_offsets()) for c in fig.axes[0].collections]
    assert offsets == [n_normal, n_bad]
    colors = {tuple(np.round(c.get_facecolor()[0], 3)) for c in fig.axes[0].collections}
    assert len(colors) == 2
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [f"normal ({n_normal})", f"anomalous ({n_bad})"]
    with pytest.raises(ValueError, match="available"):
        plot_feature_scatter(stats, "nope")
    fig.canvas.draw()


def test_defect_area_violin(stats_and_hist):
    stats, _ = stats_and_hist
    fig = plot_defect_area_violin(stats)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bottle", "carpet", "grid"]
    assert ax.get_ylabel() == "Defect area (% of image)"
    n_bad = int((stats["label"] == 1).sum())
    dots = sum(len(c.get_offsets()) for c in ax.collections if c.get_offsets().shape[0] and
               c.__class__.__name__ == "PathCollection")
    assert dots == n_bad
    with pytest.raises(ValueError, match="No anomalous"):
        plot_defect_area_violin(stats[stats["label"] == 0])
    fig.canvas.draw()


def test_correlation_heatmap(stats_and_hist):
    stats, _ = stats_and_hist
    fig = plot_correlation_heatmap(stats)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "Perceived brightness" in labels and "RMS contrast" in labels
    assert "Width (px)" not in labels  # constant over the images: no correlation
    image = ax.get_images()[0].get_array()
    assert image.shape == (len(labels), len(labels))
    np.testing.assert_allclose(np.diag(image), 1.0)
    assert len(fig.axes) == 2  # heatmap + colour bar
    with pytest.raises(ValueError, match="at least two"):
        plot_correlation_heatmap(stats, columns=["width", "brightness"])


def test_sample_grid(stats_and_hist, mvtec_root):
    stats, _ = stats_and_hist
    fig = plot_sample_grid(stats, "carpet", n_anomalous=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "good" and len(titles) == 4
    types = set(stats.loc[(stats["category"] == "carpet") & (stats["label"] == 1), "defect_type"])
    assert set(titles[1:]) <= types
    assert len(set(titles[1:])) == min(3, len(types))  # cycles through defect types first
    assert len(fig.axes[1].get_images()) == 2  # image + mask overlay
    bunch = load_mvtec(mvtec_root, "grid", split="test")
    assert plot_sample_grid(bunch, n_anomalous=1).axes[0].get_title() == "good"
    with pytest.raises(ValueError, match="several categories"):
        plot_sample_grid(stats)
    fig.canvas.draw()
