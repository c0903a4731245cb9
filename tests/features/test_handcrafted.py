"""Tests of compute_image_statistics and HandcraftedFeaturizer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from mvtec_sklearn.datasets import read_image
from mvtec_sklearn.features import (
    FEATURE_GROUPS,
    HandcraftedFeaturizer,
    compute_image_statistics,
    image_statistic_names,
    luminance,
)
from tests.conformance import check_image_estimator


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)


def test_brightness_contrast_and_channel_stats_against_numpy(rgb):
    s = compute_image_statistics(rgb, features=("brightness", "contrast", "channel_stats"))
    y = rgb.astype(float) @ [0.299, 0.587, 0.114]
    assert s["brightness"] == pytest.approx(y.mean())
    assert s["contrast"] == pytest.approx(y.std())
    for i, c in enumerate("rgb"):
        channel = rgb[..., i].astype(float)
        assert s[f"mean_{c}"] == pytest.approx(channel.mean())
        assert s[f"std_{c}"] == pytest.approx(channel.std())
        assert s[f"skew_{c}"] == pytest.approx(stats.skew(channel, axis=None))
    np.testing.assert_allclose(luminance(rgb), y)


def test_constant_image():
    img = np.full((10, 12), 100, np.uint8)
    s = compute_image_statistics(img, features=FEATURE_GROUPS, bins=8)
    assert s["brightness"] == pytest.approx(100) and s["contrast"] == pytest.approx(0)
    assert s["skew_g"] == 0.0 and s["std_b"] == 0.0
    hist = [s[f"hist_{i:02d}"] for i in range(8)]
    assert hist == [0, 0, 0, 1, 0, 0, 0, 0]  # 100 is in [96, 128)
    assert s["edge_magnitude"] == 0 and s["edge_density"] == 0
    assert s["lbp_8"] == 1.0  # every neighbour >= centre
    assert s["glcm_contrast"] == 0 and s["glcm_energy"] == 1 and s["glcm_homogeneity"] == 1


def test_edges_of_a_step():
    img = np.zeros((8, 8), np.uint8)
    img[:, 4:] = 200
    s = compute_image_statistics(img, features="edges", edge_threshold=50)
    # columns 3 and 4 see a central difference of 200 / 2 = 100 grey levels per pixel
    assert s["edge_magnitude"] == pytest.approx(2 * 100 / 8)
    assert s["edge_density"] == pytest.approx(2 / 8)


def test_histogram_and_lbp_are_distributions(rgb):
    s = compute_image_statistics(rgb, bins=5)
    assert sum(s[f"hist_{i:02d}"] for i in range(5)) == pytest.approx(1)
    assert sum(v for k, v in s.items() if k.startswith("lbp_")) == pytest.approx(1)


def test_lbp_is_rotation_invariant(rgb):
    a = compute_image_statistics(rgb, features="lbp")
    b = compute_image_statistics(np.rot90(rgb).copy(), features="lbp")
    assert a == pytest.approx(b)


def test_input_forms_agree(rgb, tmp_path):
    groups = ("brightness", "contrast", "channel_stats", "edges", "lbp", "glcm")
    ref = compute_image_statistics(rgb, features=groups)
    assert compute_image_statistics(rgb / 255.0, features=groups) == pytest.approx(ref)
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    assert compute_image_statistics(rgba, features=groups) == ref
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    assert compute_image_statistics(path, features=groups) == ref
    gray = rgb[..., 0]
    assert compute_image_statistics(gray) == compute_image_statistics(np.dstack([gray] * 3))


def test_names_and_bad_arguments():
    assert image_statistic_names("histogram", bins=3) == ["hist_00", "hist_01", "hist_02"]
    assert len(image_statistic_names()) == 1 + 1 + 9 + 16 + 2 + 10
    with pytest.raises(ValueError, match="Unknown feature group"):
        compute_image_statistics(np.zeros((4, 4)), features=("sharpness",))
    with pytest.raises(ValueError, match="shape"):
        compute_image_statistics(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compute_image_statistics(np.full((4, 4), 3.0))


def test_featurizer_rows_are_compute_image_statistics(image_paths):
    feat = HandcraftedFeaturizer(features=("edges", "brightness", "glcm"), bins=4).fit(image_paths)
    out = feat.transform(image_paths)
    assert list(feat.get_feature_names_out()) == [
        "edge_magnitude", "edge_density", "brightness",
        "glcm_contrast", "glcm_homogeneity", "glcm_energy", "glcm_correlation",
    ]
    expected = [
        list(compute_image_statistics(read_image(p), ("edges", "brightness", "glcm")).values())
        for p in image_paths
    ]
    np.testing.assert_array_equal(out, expected)


def test_featurizer_image_size_and_pandas(image_paths):
    feat = HandcraftedFeaturizer(image_size=16).set_output(transform="pandas").fit(image_paths)
    frame = feat.transform(image_paths)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (8, feat.n_features_out_)
    assert list(frame.columns) == image_statistic_names()


def test_featurizer_grayscale_input(image_paths):
    gray = np.stack([read_image(p, mode="L") for p in image_paths])
    feat = HandcraftedFeaturizer().fit(gray)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    np.testing.assert_allclose(feat.transform(gray), feat.transform(rgb))


@pytest.mark.parametrize("image_size", [None, 16])
def test_conformance(image_paths, image_size):
    check_image_estimator(HandcraftedFeaturizer(image_size=image_size), image_paths)


def test_unknown_group_raises(image_paths):
    with pytest.raises(ValueError, match="Unknown feature group"):
        HandcraftedFeaturizer(features=("brightness", "colourfulness")).fit(image_paths)
