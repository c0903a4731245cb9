"""image_statistics: values against independent computations, cache, parallelism, errors."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mvtec_sklearn.analysis import MEASURE_COLUMNS, PROVENANCE_COLUMNS, image_statistics
from mvtec_sklearn.analysis import _statistics

LUMA = np.array([0.299, 0.587, 0.114])


def _save(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def known_images(tmp_path):
    """A small labelled collection whose statistics are computed here independently."""
    rng = np.random.default_rng(3)
    rows, arrays, masks = [], {}, {}
    # constant colour image
    const = np.zeros((12, 16, 3), np.uint8) + np.array([10, 20, 30], np.uint8)
    # two-level grayscale image: half 0, half 200
    two = np.zeros((10, 10), np.uint8)
    two[:, 5:] = 200
    # colour file whose channels are all equal (grayscale detected)
    gray_rgb = np.repeat(rng.integers(0, 256, (9, 7, 1), dtype=np.uint8), 3, axis=2)
    # random colour images with random masks
    for name, arr in (("const", const), ("two", two), ("gray_rgb", gray_rgb)):
        arrays[name] = arr
        rows.append(dict(category="cat_a", split="train", defect_type="good", label=0,
                         image_id=name, path=_save(tmp_path / f"{name}.png", arr),
                         mask_path=None))
    for i in range(3):
        arr = rng.integers(0, 256, (14, 11, 3), dtype=np.uint8)
        mask = rng.random((14, 11)) < 0.1 * (i + 1)
        name = f"bad{i}"
        arrays[name], masks[name] = arr, mask
        rows.append(dict(category="cat_b", split="test", defect_type=f"t{i % 2}", label=1,
                         image_id=name, path=_save(tmp_path / f"{name}.png", arr),
                         mask_path=_save(tmp_path / f"{name}_mask.png", mask * 255)))
    return pd.DataFrame(rows), arrays, masks


def test_values_match_independent_computation(known_images):
    frame, arrays, masks = known_images
    stats = image_statistics(frame)
    assert list(stats.columns) == [*PROVENANCE_COLUMNS, *MEASURE_COLUMNS]
    assert stats["path"].tolist() == frame["path"].tolist()
    stats = stats.set_index("image_id")

    const = stats.loc["const"]
    assert (const["width"], const["height"], const["channels"]) == (16, 12, 3)
    assert const["brightness"] == pytest.approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30, abs=1e-6)
    assert const["contrast"] == pytest.approx(0.0, abs=1e-6)
    assert [const["mean_r"], const["mean_g"], const["mean_b"]] == pytest.approx([10, 20, 30])
    assert [const["sum_r"], const["sum_g"], const["sum_b"]] == pytest.approx([1920, 3840, 5760])
    assert const["defect_area_px"] == 0 and const["defect_area_pct"] == 0

    two = stats.loc["two"]
    assert two["channels"] == 1
    assert two["brightness"] == pytest.approx(100.0)
    assert two["contrast"] == pytest.approx(100.0)  # RMS contrast of a 50/50 two-level image
    assert two["std_r"] == pytest.approx(100.0)

    assert stats.loc["gray_rgb", "channels"] == 1

    for name, arr in arrays.items():
        rgb = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr
        rgb = rgb.astype(np.float64)
        y = rgb @ LUMA
        row = stats.loc[name]
        assert row["brightness"] == pytest.approx(y.mean(), rel=1e-6)
        assert row["contrast"] == pytest.approx(y.std(), rel=1e-6, abs=1e-6)
        stds = [row["std_r"], row["std_g"], row["std_b"]]
        assert stds == pytest.approx(rgb.std(axis=(0, 1)), abs=1e-6)
        assert [row["sum_r"], row["sum_g"], row["sum_b"]] == pytest.approx(rgb.sum(axis=(0, 1)))
    for name, mask in masks.items():
        area = int(np.count_nonzero(mask))
        assert stats.loc[name, "defect_area_px"] == area
        assert stats.loc[name, "defect_area_pct"] == pytest.approx(100 * area / mask.size)
        assert stats.loc[name, "channels"] == 3


def test_histograms_match_bincount(known_images):
    frame, arrays, _ = known_images
    stats, hist = image_statistics(frame, return_histograms=True)
    assert hist.index.names == ["category", "channel"]
    assert list(hist.columns) == list(range(256))
    for category, group in stats.groupby("category"):
        expected = np.zeros((3, 256), np.int64)
        for name in group["image_id"]:
            arr = arrays[name]
            rgb = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr
            for c in range(3):
                expected[c] += np.bincount(rgb[..., c].ravel(), minlength=256)
        np.testing.assert_array_equal(hist.loc[category].loc[["R", "G", "B"]].to_numpy(), expected)


def test_paths_only_and_bunch_like_input(known_images):
    frame, _, _ = known_images
    stats = image_statistics(frame["path"].tolist())
    assert stats["category"].isna().all()
    # no mask and no label: the defect area is unknown, not zero
    assert stats["defect_area_px"].isna().all()
    from sklearn.utils import Bunch

    from_bunch = image_statistics([Bunch(frame=frame.iloc[:2]), Bunch(frame=frame.iloc[2:])])
    pd.testing.assert_frame_equal(from_bunch, image_statistics(frame))
    _, hist = image_statistics(frame["path"].tolist()[:1], return_histograms=True)
    assert hist.index.get_level_values(0).unique().tolist() == ["all"]


def test_cache_skips_decoding(known_images, tmp_path, monkeypatch):
    frame, _, _ = known_images
    decodes = []
    original = _statistics.read_image

    def counting_read_image(path, *args, **kwargs):
        decodes.append(os.fspath(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(_statistics, "read_image", counting_read_image)
    cache = tmp_path / "cache"
    first = image_statistics(frame, cache_dir=cache)
    assert len(decodes) == len(frame)
    second = image_statistics(frame, cache_dir=cache)
    assert len(decodes) == len(frame)  # everything came from the cache
    pd.testing.assert_frame_equal(first, second)

    # a changed file (new content, size and mtime) is measured again
    changed = frame["path"].iloc[0]
    _save(changed, np.full((5, 5, 3), 255, np.uint8))
    os.utime(changed, ns=(1, 1))
    third = image_statistics(frame, cache_dir=cache)
    assert decodes[len(frame):] == [changed]
    assert third.loc[0, "brightness"] == pytest.approx(255.0)

    # a corrupt cache entry is recomputed, not an error
    for dirpath, _, files in os.walk(cache):
        for f in files:
            with open(os.path.join(dirpath, f), "wb") as fh:
                fh.write(b"garbage")
    pd.testing.assert_frame_equal(image_statistics(frame, cache_dir=cache), third)


def test_parallel_equals_serial(known_images):
    # Threads keep the test inside its time budget (a loky worker spends seconds importing
    # torch); the process backend runs the same code with picklable str/None arguments.
    from joblib import parallel_config

    frame, _, _ = known_images
    serial, hist1 = image_statistics(frame, return_histograms=True)
    with parallel_config(backend="threading"):
        parallel, hist2 = image_statistics(frame, n_jobs=2, return_histograms=True)
    pd.testing.assert_frame_equal(serial, parallel)
    pd.testing.assert_frame_equal(hist1, hist2)


def test_errors(known_images, tmp_path):
    frame, _, _ = known_images
    with pytest.raises(FileNotFoundError, match="missing.png"):
        image_statistics([str(tmp_path / "missing.png")])
    bad = frame.copy()
    bad.loc[3, "mask_path"] = str(tmp_path / "nomask.png")
    with pytest.raises(FileNotFoundError, match="nomask.png"):
        image_statistics(bad)
    with pytest.raises(ValueError, match="empty"):
        image_statistics([])
    with pytest.raises(ValueError, match="single path"):
        image_statistics(frame["path"].iloc[0])
    with pytest.raises(ValueError, match="'path' column"):
        image_statistics(pd.DataFrame({"file": ["a.png"]}))
    with pytest.raises(ValueError, match="Expected"):
        image_statistics(42)
