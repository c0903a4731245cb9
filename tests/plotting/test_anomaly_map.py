"""AnomalyMapDisplay and plot_anomaly_grid render with the expected axes and artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from mvtec_sklearn.plotting import AnomalyMapDisplay, plot_anomaly_grid  # noqa: E402


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    masks = np.zeros((3, 24, 24), bool)
    masks[1, 5:12, 5:12] = True
    maps = rng.random((3, 24, 24)) + 2.0 * masks
    return images, maps, masks


def test_from_predictions_draws_overlay_and_contours(data):
    images, maps, masks = data
    disp = AnomalyMapDisplay.from_predictions(
        images, maps, masks, threshold=1.5, titles=["a", "b", "c"]
    )
    assert disp.ax_.shape == (3, 2)
    assert len(disp.heatmaps_) == 3
    # image panel: one image; overlay panel: image + heatmap
    assert len(disp.ax_[0, 0].images) == 1 and len(disp.ax_[0, 1].images) == 2
    # ground-truth contour only where there is a defect, threshold contour where crossed
    assert disp.mask_contours_[0] is None and disp.mask_contours_[1] is not None
    assert disp.threshold_contours_[1] is not None
    assert disp.ax_[1, 0].get_title() == "b"
    assert disp.colorbar_ is not None
    np.testing.assert_allclose(disp.heatmaps_[0].get_array(), maps[0])
    plt.close(disp.figure_)


def test_from_predictions_with_mask_paths_and_given_axes(data, tmp_path):
    images, maps, masks = data
    mask_path = tmp_path / "m.png"
    Image.fromarray(masks[1].astype(np.uint8) * 255).save(mask_path)
    fig, axes = plt.subplots(1, 2)
    disp = AnomalyMapDisplay.from_predictions(
        images[1:2], maps[1:2], [str(mask_path)], ax=axes, colorbar=False
    )
    assert disp.figure_ is fig and disp.colorbar_ is None
    np.testing.assert_array_equal(disp.masks[0], masks[1])
    assert disp.mask_contours_[0] is not None and disp.threshold_contours_[0] is None
    with pytest.raises(ValueError, match="axes"):
        AnomalyMapDisplay.from_predictions(images, maps, ax=axes)
    with pytest.raises(ValueError, match="shape"):
        AnomalyMapDisplay.from_predictions(images, maps[:, :10])
    plt.close("all")


def test_from_estimator(data):
    images, maps, masks = data

    class MapEstimator:
        def anomaly_map(self, X):
            return np.asarray(X, dtype=float).mean(axis=-1) / 255.0

    disp = AnomalyMapDisplay.from_estimator(MapEstimator(), images, masks)
    np.testing.assert_allclose(disp.anomaly_maps, images.mean(axis=-1) / 255.0)
    with pytest.raises(ValueError, match="anomaly_map"):
        AnomalyMapDisplay.from_estimator(object(), images)
    plt.close("all")


def test_plot_anomaly_grid(data):
    images, maps, masks = data
    rng = np.random.default_rng(1)
    images = np.concatenate([images, images])
    maps = np.concatenate([maps, maps])
    masks = np.concatenate([masks, masks])
    y = np.array([0, 1, 0, 1, 1, 0])
    scores = rng.random(6)
    fig = plot_anomaly_grid(images, maps, y, scores, masks=masks, n=2, threshold=1.0)
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    top = np.argsort(-scores)[:2]
    missed = np.flatnonzero(y == 1)[np.argsort(scores[y == 1])][:2]
    assert f"{scores[top[0]]:.3g}" in titles[0] and titles[0].startswith("top-scored")
    assert f"{scores[missed[0]]:.3g}" in titles[2] and titles[2].startswith("worst-missed")
    assert all(len(ax.images) == 2 for ax in fig.axes)
    plt.close(fig)
    # no defective image: only the top row
    fig = plot_anomaly_grid(images, maps, np.zeros(6), scores, n=3)
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="one entry per image"):
        plot_anomaly_grid(images, maps, y[:3], scores)
