"""DatasetCache / save_cache / load_cache: round trip, staleness, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mvtec_sklearn.datasets import (
    DatasetCache,
    load_cache,
    load_images,
    load_masks,
    load_mvtec,
    save_cache,
)
from tests._data import tiny_mvtec


@pytest.fixture
def root(tmp_path):
    return tiny_mvtec(tmp_path / "data", ["carpet"], n_train=2, random_state=5)


def test_round_trip(tmp_path, root):
    cache = DatasetCache(tmp_path / "cache")
    test = load_mvtec(root, "carpet", split="test")
    first = cache.load(test, image_size=24)
    assert not first.from_cache and os.path.isfile(first.cache_path)
    np.testing.assert_array_equal(first.images, load_images(test.paths, size=24))
    np.testing.assert_array_equal(first.masks, load_masks(test.mask_paths, size=24))
    second = cache.load(load_mvtec(root, "carpet", split="test"), image_size=24)
    assert second.from_cache and second.cache_path == first.cache_path
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.masks, first.masks)
    assert second.images.dtype == np.float32 and second.masks.dtype == bool
    assert second.paths == test.paths and list(second.target) == list(test.target)
    stored = load_cache(first.cache_path)
    pd.testing.assert_frame_equal(stored.frame, test.frame)
    assert stored.frame["mask_path"].tolist() == test.mask_paths  # None survives
    assert [n for n in os.listdir(tmp_path / "cache") if n.startswith(".tmp")] == []


def test_different_size_or_channels_is_a_different_entry(tmp_path, root):
    cache = DatasetCache(tmp_path / "cache")
    train = load_mvtec(root, "carpet")
    paths = {
        cache.load(train, image_size=s, channels=c).cache_path
        for s in (16, 24)
        for c in ("keep", 1)
    }
    assert len(paths) == 4
    assert cache.load(train, image_size=16, channels=1).images.shape == (2, 16, 16, 1)


def test_changed_source_is_never_served_stale(tmp_path, root):
    cache = DatasetCache(tmp_path / "cache")
    train = load_mvtec(root, "carpet")
    old = cache.load(train, image_size=16)
    src = train.paths[0]
    other = load_images([train.paths[1]])[0]
    from PIL import Image

    Image.fromarray((other * 255).round().astype(np.uint8)).save(src)
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = cache.load(load_mvtec(root, "carpet"), image_size=16)
    assert not new.from_cache and new.cache_path != old.cache_path
    np.testing.assert_array_equal(new.images[0], load_images([src], size=16)[0])
    # the stored key protects a file that is read under another key
    with pytest.raises(ValueError, match="stale"):
        load_cache(old.cache_path, key=cache.key(load_mvtec(root, "carpet"), image_size=16))


def test_save_and_load_cache_functions(tmp_path):
    frame = pd.DataFrame(
        {
            "path": ["a.png", "b.png"],
            "label": [0, 1],
            "mask_path": pd.Series([None, "b_mask.png"], dtype=object),
        }
    )
    images = np.random.default_rng(0).random((2, 3, 3, 3)).astype(np.float32)
    masks = np.array([np.zeros((3, 3), bool), np.eye(3, dtype=bool)])
    path = save_cache(tmp_path / "sub" / "x.npz", images, masks, frame=frame, key="k1")
    out = load_cache(path, key="k1")
    np.testing.assert_array_equal(out.images, images)
    np.testing.assert_array_equal(out.masks, masks)
    pd.testing.assert_frame_equal(out.frame, frame)
    assert load_cache(save_cache(tmp_path / "y.npz", images)).masks is None
    with pytest.raises(ValueError, match="stale"):
        load_cache(path, key="k2")
    with pytest.raises(FileNotFoundError, match="nope"):
        load_cache(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.npz"):
        load_cache(tmp_path / "bad.npz")
    np.savez(tmp_path / "foreign.npz", images=images)
    with pytest.raises(ValueError, match="not a version"):
        load_cache(tmp_path / "foreign.npz")
    with pytest.raises(ValueError, match="masks"):
        save_cache(tmp_path / "z.npz", images, masks[:1])
    with pytest.raises(ValueError, match="frame"):
        save_cache(tmp_path / "z.npz", images, frame=frame.iloc[:1])


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        save_cache(tmp_path / "x.npz", np.zeros((1, 2, 2)))
    assert os.listdir(tmp_path) == []


def test_cache_dir_inside_dataset_is_refused(root):
    with pytest.raises(ValueError, match="never written"):
        DatasetCache(os.path.join(root, "carpet", ".cache")).load(load_mvtec(root, "carpet"))
