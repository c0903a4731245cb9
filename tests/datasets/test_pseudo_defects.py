"""pseudo_defects: the real-photo set's recipes pasted into given normal images."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mvtec_sklearn.datasets import PSEUDO_DEFECT_RECIPES, load_images, pseudo_defects


def _normal(n=3, size=64, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 0.5 + 0.2 * np.sin(12 * xx + rng.uniform(0, 6, (n, 1, 1)))  # a striped texture
    img = base[..., None] + rng.normal(0, 0.03, (n, size, size, channels))
    return np.clip(img, 0, 1).astype(np.float32)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), n_copies=st.integers(1, 5), channels=st.sampled_from([1, 3]),
       seed=st.integers(0, 2**16))
def test_masks_mark_exactly_the_changed_pixels(n, n_copies, channels, seed):
    images = _normal(n, 48, channels, seed)
    defective, masks, recipes = pseudo_defects(images, n_copies=n_copies, random_state=seed)
    assert defective.shape == (n * n_copies, 48, 48, channels) and defective.dtype == np.float32
    assert masks.shape == (n * n_copies, 48, 48) and masks.dtype == bool
    assert recipes.tolist() == [PSEUDO_DEFECT_RECIPES[i % 4] for i in range(n * n_copies)]
    assert 0.0 <= defective.min() and defective.max() <= 1.0
    originals = np.repeat(images, n_copies, axis=0)
    changed = np.abs(defective - originals).max(axis=-1) > 4 / 255
    assert not (changed & ~masks).any()  # nothing outside the mask visibly moves
    coverage = masks.mean(axis=(1, 2))
    assert (coverage >= 0.001).all() and (coverage <= 0.2).all()
    margin = round(0.06 * 48)
    assert not masks[:, :margin].any() and not masks[:, -margin:].any()
    assert not masks[:, :, :margin].any() and not masks[:, :, -margin:].any()


def test_every_recipe_changes_its_region():
    images = _normal(2, 64)
    defective, masks, recipes = pseudo_defects(images, random_state=0)
    assert sorted(set(recipes)) == sorted(PSEUDO_DEFECT_RECIPES)
    originals = np.repeat(images, 4, axis=0)
    for img, orig, mask in zip(defective, originals, masks):
        # most of a pasted region, and all of a drawn line or stain, is visibly different
        assert (np.abs(img - orig).max(axis=-1)[mask] > 4 / 255).mean() >= 0.5


def test_seeded_paths_and_arrays_agree_and_non_square_becomes_square(tmp_path):
    images = (_normal(2, 64) * 255).round().astype(np.uint8)
    paths = []
    for i, img in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img).save(paths[-1])
    a = pseudo_defects(images, n_copies=2, random_state=3)
    b = pseudo_defects(paths, n_copies=2, random_state=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = pseudo_defects(images, n_copies=2, random_state=4)
    assert not np.array_equal(a[1], c[1])
    wide = load_images(images, size=(64, 80))
    defective, masks, _ = pseudo_defects(wide, n_copies=1, random_state=0)
    assert defective.shape == (2, 64, 64, 3) and masks.shape == (2, 64, 64)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_copies": 0}, "n_copies must be an integer >= 1"),
    ({"n_copies": 1.5}, "n_copies must be an integer >= 1"),
])
def test_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pseudo_defects(_normal(1, 32), **kwargs)


def test_too_small_images_are_refused():
    with pytest.raises(ValueError, match="at least 16 px"):
        pseudo_defects(_normal(1, 12))
