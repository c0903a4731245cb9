"""Benchmark figures: heatmap, mean-per-model bars, ROC curves."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mvtec_sklearn.plotting import plot_model_bars, plot_roc_curves, plot_score_heatmap


@pytest.fixture
def results():
    return pd.DataFrame(
        {
            "category": ["bottle", "bottle", "grid", "grid", "carpet", "carpet"],
            "model": ["a", "b", "a", "b", "a", "b"],
            "image_auroc": [0.9, 0.8, 0.7, np.nan, 0.5, 0.6],
            "pixel_auroc": [np.nan] * 6,
        }
    )


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(10), np.ones(10)].astype(int)
    frames = []
    for category in ("bottle", "grid"):
        for model, shift in (("a", 2.0), ("b", 0.5)):
            frames.append(
                pd.DataFrame(
                    {
                        "category": category,
                        "model": model,
                        "label": y,
                        "anomaly_score": rng.normal(size=20) + shift * y,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def teardown_function():
    plt.close("all")


def test_heatmap_values_and_mean_row(results):
    ax = plot_score_heatmap(results.iloc[::-1])  # order of first appearance is kept
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "a"]
    ax = plot_score_heatmap(results)
    data = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["bottle", "grid", "carpet", "mean"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    np.testing.assert_allclose(data[:3], [[0.9, 0.8], [0.7, np.nan], [0.5, 0.6]])
    np.testing.assert_allclose(data[3], [0.7, 0.7])  # NaN (failed job) ignored in the mean
    texts = {t.get_text() for t in ax.texts}
    assert "0.90" in texts and "0.70" in texts


def test_heatmap_without_mean_row_on_given_axes(results):
    fig, ax = plt.subplots()
    out = plot_score_heatmap(results, mean_row=False, annotate=False, ax=ax)
    assert out is ax and len(ax.texts) == 0
    assert ax.images[0].get_array().shape == (3, 2)


def test_model_bars_mean_and_error(results):
    ax = plot_model_bars(results)
    heights = [p.get_height() for p in ax.patches]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["a", "b"]  # both 0.7, stable order
    np.testing.assert_allclose(heights, [0.7, 0.7])
    ax = plot_model_bars(results.assign(image_auroc=[0.9, 1.0, 0.7, 0.9, 0.5, 0.8]))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "a"]
    # error bars: std over categories
    segments = ax.collections[0].get_segments()
    np.testing.assert_allclose(
        segments[0][1][1] - segments[0][0][1], 2 * np.std([1.0, 0.9, 0.8], ddof=1)
    )


def test_roc_curves_one_line_per_model_with_auc(scores):
    ax = plot_roc_curves(scores, category="grid")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    part = scores[(scores.category == "grid") & (scores.model == "a")]
    auc = roc_auc_score(part.label, part.anomaly_score)
    assert any(text.startswith("a") and f"{auc:.2f}" in text for text in legend)
    assert any(text.startswith("b") for text in legend)
    assert "grid" in ax.get_title()


def test_roc_curves_model_order_and_errors(scores):
    ax = plot_roc_curves(scores[scores.category == "bottle"], models=["b"])
    assert [t.get_text() for t in ax.get_legend().get_texts()][0].startswith("b")
    with pytest.raises(ValueError, match="several categories"):
        plot_roc_curves(scores)
    with pytest.raises(ValueError, match="not in scores"):
        plot_roc_curves(scores, category="zipper")
    with pytest.raises(ValueError, match="lacks the column"):
        plot_roc_curves(scores.drop(columns="label"), category="grid")
    with pytest.raises(ValueError, match="No model"):
        plot_roc_curves(scores.assign(label=0), category="grid")


def test_bad_results_raise(results):
    with pytest.raises(ValueError, match="lacks the column"):
        plot_score_heatmap(results, metric="aupro")
    with pytest.raises(ValueError, match="no finite value"):
        plot_model_bars(results, metric="pixel_auroc")
    with pytest.raises(TypeError, match="DataFrame"):
        plot_score_heatmap(results.to_dict())


def test_check_columns_names_the_frame_and_the_missing_columns():
    from mvtec_sklearn.plotting._benchmark import _check_columns

    frame = pd.DataFrame({"model": ["a"], "label": [0]})
    _check_columns(frame, "scores", ("model", "label"))  # complete: no error
    with pytest.raises(ValueError, match=r"scores lacks the column\(s\) \['anomaly_score'\]"):
        _check_columns(frame, "scores", ("model", "anomaly_score"))
    with pytest.raises(TypeError, match="scores must be a pandas DataFrame, got dict"):
        _check_columns(frame.to_dict(), "scores", ("model",))
    with pytest.raises(TypeError, match="scores must be a pandas DataFrame"):
        plot_roc_curves(frame.to_dict())


def test_plot_mean_ranks_orders_models_and_tests_them():
    from mvtec_sklearn.plotting import plot_mean_ranks

    results = pd.DataFrame({"category": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
                            "model": ["x", "y", "z"] * 3,
                            "image_auroc": [0.9, 0.7, 0.8, 0.95, 0.6, 0.7, 0.9, np.nan, 0.1]})
    ax = plot_mean_ranks(results)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "z", "y"]
    assert [p.get_width() for p in ax.patches] == pytest.approx([1.0, 2.0, 3.0])
    assert "Friedman p" in ax.get_title()
    with pytest.raises(ValueError, match="every model"):
        plot_mean_ranks(results.assign(image_auroc=[np.nan] + [0.5] * 6 + [np.nan, 0.5])
                        .query("category != 'b'"))
