"""The real-photo MVTec-format generator: layout, masks, determinism, the cached root."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from mvtec_sklearn.datasets import (
    PHOTO_CATEGORIES,
    list_categories,
    load_mvtec,
    make_mvtec_photos,
    photo_defect_types,
    photos_root,
    read_image,
    read_mask,
)
from mvtec_sklearn.datasets._photos import _perlin_noise
from tests._data import file_contents

_GREY = {"grass", "gravel", "brick", "cameraman", "coins", "page"}
_TEXTURES = {"grass", "gravel", "brick", "stars", "tissue"}


def test_categories_textures_and_objects_grey_and_rgb():
    assert len(PHOTO_CATEGORIES) == 12
    assert set(PHOTO_CATEGORIES[:5]) == _TEXTURES  # textures first
    for category in PHOTO_CATEGORIES:
        assert photo_defect_types(category) == ["cut_paste", "foreign_texture", "scratch", "stain"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    category=st.sampled_from(PHOTO_CATEGORIES),
    size=st.integers(32, 80),
    n_defect=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 2),
)
def test_layout_shapes_and_masks(category, size, n_defect, seed):
    with tempfile.TemporaryDirectory() as root:
        make_mvtec_photos(
            root, categories=category, n_train=2, n_test_good=1, n_test_defect=n_defect,
            image_size=size, random_state=seed,
        )
        assert list_categories(root) == [category]
        train = load_mvtec(root, category, split="train")
        test = load_mvtec(root, category, split="test")
        assert len(train.paths) == 2 and set(train.defect_type) == {"good"}
        assert test.target.tolist() == [0] + [1] * n_defect
        assert set(test.defect_type) - {"good"} <= set(photo_defect_types(category))
        for path, mask_path in zip([*train.paths, *test.paths], [*train.mask_paths, *test.mask_paths]):
            img = read_image(path)
            assert img.shape == ((size, size) if category in _GREY else (size, size, 3))
            if mask_path is None:
                continue
            mask = read_mask(mask_path)
            assert mask.shape == (size, size)
            assert 0.001 <= mask.mean() <= 0.20  # non-empty, never the whole image
        assert all(m is None for m in [*train.mask_paths, test.mask_paths[0]])


@settings(max_examples=6, deadline=None)
@given(category=st.sampled_from(PHOTO_CATEGORIES), seed=st.integers(0, 1000))
def test_deterministic_and_independent_of_other_categories(category, seed):
    kwargs = dict(n_train=2, n_test_good=1, n_test_defect=4, image_size=48, random_state=seed)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        make_mvtec_photos(a, categories=[category], **kwargs)
        other = "coins" if category != "coins" else "grass"
        make_mvtec_photos(b, categories=[other, category], **kwargs)
        tree_b = file_contents(os.path.join(b, category))
        assert file_contents(os.path.join(a, category)) == tree_b
    with tempfile.TemporaryDirectory() as c:
        make_mvtec_photos(c, categories=[category], **{**kwargs, "random_state": seed + 1})
        assert file_contents(os.path.join(c, category)) != tree_b


def test_normal_images_vary_and_defects_change_the_masked_pixels(tmp_path):
    root = make_mvtec_photos(
        tmp_path, categories=["coffee", "gravel"], n_train=3, n_test_good=0, n_test_defect=8,
        image_size=64,
    )
    for category in ("coffee", "gravel"):
        train = [read_image(p).astype(float) for p in load_mvtec(root, category, "train").paths]
        assert np.abs(train[0] - train[1]).mean() > 2  # augmented, not copies
        test = load_mvtec(root, category, "test")
        assert sorted(set(test.defect_type)) == photo_defect_types(category)  # 2 of each


def test_region_masks_are_solid(tmp_path):
    """cut_paste masks are the pasted rectangle; foreign_texture masks are Perlin blobs."""
    root = make_mvtec_photos(
        tmp_path, categories=["brick", "rocket"], n_train=1, n_test_good=0, n_test_defect=12,
        image_size=64,
    )
    for category in ("brick", "rocket"):
        test = load_mvtec(root, category, "test")
        for kind, mask_path in zip(test.defect_type, test.mask_paths):
            mask = read_mask(mask_path)
            if kind == "cut_paste":
                rows, cols = np.nonzero(mask)
                box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
                assert box.all()
            elif kind == "foreign_texture":
                assert (ndimage.binary_fill_holes(mask) == mask).all()


@settings(max_examples=20, deadline=None)
@given(n=st.integers(8, 96), ry=st.integers(1, 8), rx=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_perlin_noise_is_bounded_smooth_and_seeded(n, ry, rx, seed):
    noise = _perlin_noise(np.random.default_rng(seed), n, (ry, rx))
    assert noise.shape == (n, n)
    assert np.abs(noise).max() <= np.sqrt(0.5) + 1e-5  # gradient noise bound in 2-D
    # one pixel moves at most 1/n of a lattice cell: the slope of the noise is bounded
    step = max(ry, rx) / n
    assert np.abs(np.diff(noise, axis=0)).max() <= 3 * step + 1e-5
    assert np.abs(np.diff(noise, axis=1)).max() <= 3 * step + 1e-5
    again = _perlin_noise(np.random.default_rng(seed), n, (ry, rx))
    np.testing.assert_array_equal(noise, again)


def test_existing_category_needs_overwrite(tmp_path):
    kwargs = dict(categories=["coins"], n_train=1, n_test_good=0, n_test_defect=1, image_size=32)
    make_mvtec_photos(tmp_path, **kwargs)
    with pytest.raises(FileExistsError, match="coins"):
        make_mvtec_photos(tmp_path, **kwargs)
    make_mvtec_photos(tmp_path, overwrite=True, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"categories": ["coffee", "bottle"]}, "Unknown photo categories \\['bottle'\\]"),
        ({"categories": []}, "must not be empty"),
        ({"image_size": 16}, r"'image_size' parameter of make_mvtec_photos must be an int in the "
                             r"range \[32, inf\)"),
        ({"n_train": 0}, r"'n_train' parameter of make_mvtec_photos must be an int in the range "
                         r"\[1, inf\)"),
        ({"random_state": -1}, r"'random_state' parameter of make_mvtec_photos must be an int in "
                               r"the range \[0, inf\) or None"),
    ],
)
def test_make_mvtec_photos_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_mvtec_photos(tmp_path, **kwargs)


def test_photos_root_generates_once_and_keys_on_settings(tmp_path):
    kwargs = dict(categories=["page"], n_train=1, n_test_good=1, n_test_defect=1, image_size=32)
    root = photos_root(tmp_path, **kwargs)
    assert os.path.basename(root).startswith("photos-")
    stamp = os.path.getmtime(os.path.join(root, "page", "train", "good", "000.png"))
    assert photos_root(tmp_path, **kwargs) == root
    assert os.path.getmtime(os.path.join(root, "page", "train", "good", "000.png")) == stamp
    assert photos_root(tmp_path, **{**kwargs, "random_state": 1}) != root
    with pytest.raises(TypeError, match="photos_root\\(\\) chooses the folder"):
        photos_root(tmp_path, root="x")
    with pytest.raises(TypeError, match="Unknown make_mvtec_photos arguments \\['colour'\\]"):
        photos_root(tmp_path, colour=True)
