"""Per-category tables against independent counts and averages."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mvtec_sklearn.analysis import category_table, count_table, feature_table, image_statistics
from mvtec_sklearn.datasets import load_mvtec, read_mask


@pytest.fixture(scope="module")
def mvtec_stats(mvtec_root):
    frames = [load_mvtec(mvtec_root, c, split="all").frame for c in ("bottle", "grid", "carpet")]
    return image_statistics(pd.concat(frames, ignore_index=True))


def _files(folder):
    return sorted(f for f in os.listdir(folder) if not f.startswith("."))


def test_count_table_matches_folder_listing(mvtec_root, mvtec_stats):
    table = count_table(mvtec_stats)
    assert list(table.columns) == [
        "train_normal", "test_normal", "test_anomalous", "n_anomaly_types"
    ]
    assert sorted(table.index) == ["bottle", "carpet", "grid"]
    for category in table.index:
        base = os.path.join(mvtec_root, category)
        defect_types = [d for d in _files(os.path.join(base, "test")) if d != "good"]
        n_train = len(_files(os.path.join(base, "train", "good")))
        assert table.loc[category, "train_normal"] == n_train
        assert table.loc[category, "test_normal"] == len(_files(os.path.join(base, "test", "good")))
        assert table.loc[category, "test_anomalous"] == sum(
            len(_files(os.path.join(base, "test", d))) for d in defect_types
        )
        assert table.loc[category, "n_anomaly_types"] == len(defect_types)


def test_feature_table_matches_masks(mvtec_stats):
    table = feature_table(mvtec_stats)
    for category, group in mvtec_stats.groupby("category"):
        bad = group[group["label"] == 1]
        areas = [int(read_mask(p).sum()) for p in bad["mask_path"]]
        sizes = [read_mask(p).size for p in bad["mask_path"]]
        assert table.loc[category, "avg_defect_area_px"] == pytest.approx(np.mean(areas))
        assert table.loc[category, "avg_defect_area_pct"] == pytest.approx(
            np.mean([100 * a / s for a, s in zip(areas, sizes)])
        )
        assert table.loc[category, "avg_brightness"] == pytest.approx(group["brightness"].mean())
        assert table.loc[category, "avg_contrast"] == pytest.approx(group["contrast"].mean())
        assert table.loc[category, "width"] == 64 and table.loc[category, "height"] == 64
        assert bool(table.loc[category, "constant_size"])
    combined = category_table(mvtec_stats)
    assert list(combined.columns) == [*count_table(mvtec_stats).columns, *table.columns]


def test_feature_table_size_and_channels_rules():
    stats = pd.DataFrame({
        "category": ["a", "a", "a", "b", "b"],
        "label": [0, 1, 1, 0, 0],
        "width": [10, 10, 12, 5, 5],
        "height": [8, 8, 8, 5, 5],
        "channels": [3, 1, 3, 1, 1],
        "brightness": [1.0, 2.0, 3.0, 4.0, 6.0],
        "contrast": [0.0, 3.0, 3.0, 1.0, 1.0],
        "defect_area_px": [0, 10, np.nan, 0, 0],
        "defect_area_pct": [0.0, 12.5, np.nan, 0.0, 0.0],
    })
    table = feature_table(stats)
    assert table.loc["a", "width"] == 10 and not table.loc["a", "constant_size"]
    assert table.loc["a", "channels"] == 3 and table.loc["b", "channels"] == 1
    assert table.loc["a", "avg_defect_area_px"] == 10  # unknown areas are skipped
    assert np.isnan(table.loc["b", "avg_defect_area_pct"])  # no anomalous image
    assert table.loc["b", "avg_brightness"] == 5.0
    with pytest.raises(ValueError, match="image_statistics"):
        feature_table(stats.drop(columns="contrast"))
