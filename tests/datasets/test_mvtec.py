"""load_mvtec / list_categories / load_masks on generated data and on every bad input."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from mvtec_sklearn.datasets import (
    CATEGORIES,
    CATEGORY_GROUPS,
    OBJECT_CATEGORIES,
    TEXTURE_CATEGORIES,
    list_categories,
    load_images,
    load_masks,
    load_mvtec,
    read_mask,
    synthetic_defect_types,
)
from tests._data import file_states, tiny_mvtec

FRAME_COLUMNS = ["category", "split", "defect_type", "label", "image_id", "path", "mask_path"]


@pytest.fixture
def small_root(tmp_path):
    """A writable one-category dataset (bottle, 32 px) to break in tests."""
    return tiny_mvtec(tmp_path / "data", ["bottle"])


def test_constants():
    assert len(CATEGORIES) == 15 and len(set(CATEGORIES)) == 15
    assert set(TEXTURE_CATEGORIES) | set(OBJECT_CATEGORIES) == set(CATEGORIES)
    assert not set(TEXTURE_CATEGORIES) & set(OBJECT_CATEGORIES)
    assert set(TEXTURE_CATEGORIES) == {"carpet", "grid", "leather", "tile", "wood"}
    grouped = [c for cats in CATEGORY_GROUPS.values() for c in cats]
    assert sorted(grouped) == sorted(CATEGORIES)
    assert list(CATEGORY_GROUPS) == [
        "texture-based",
        "industrial components",
        "consumer products",
        "edible",
    ]


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    categories=st.lists(
        st.sampled_from(["bottle", "grid", "pill", "zipper", "toothbrush"]),
        min_size=1,
        max_size=2,
        unique=True,
    ),
    n_train=st.integers(1, 4),
    n_test_good=st.integers(0, 3),
    n_test_defect=st.integers(0, 7),
    seed=st.integers(0, 2**20),
)
# Found by hypothesis: a 32 px pill without specks for a 'pill_type' defect.
@example(categories=["bottle", "pill"], n_train=1, n_test_good=0, n_test_defect=5, seed=676)
def test_round_trip_on_generated_data(
    tmp_path_factory, categories, n_train, n_test_good, n_test_defect, seed
):
    root = tiny_mvtec(tmp_path_factory.mktemp("rt"), categories, n_train=n_train,
                      n_test_good=n_test_good, n_test_defect=n_test_defect, random_state=seed)
    assert list_categories(root) == sorted(categories)
    for cat in categories:
        train = load_mvtec(root, cat, split="train")
        assert len(train.paths) == n_train and (train.target == 0).all()
        assert train.mask_paths == [None] * n_train and set(train.defect_type) == {"good"}
        assert list(train.frame.columns) == FRAME_COLUMNS
        if n_test_good + n_test_defect == 0:
            with pytest.raises(FileNotFoundError, match="test"):
                load_mvtec(root, cat, split="test")
            continue
        test = load_mvtec(root, cat, split="test")
        both = load_mvtec(root, cat, split="all")
        assert both.paths == train.paths + test.paths
        assert both.frame["split"].tolist() == ["train"] * n_train + ["test"] * len(test.paths)
        assert int((test.target == 0).sum()) == n_test_good
        assert int(test.target.sum()) == n_test_defect
        # labels, defect types and masks agree; masks pair with images by file name
        types = synthetic_defect_types(cat)
        expected = {
            t: n_test_defect // len(types) + (i < n_test_defect % len(types))
            for i, t in enumerate(types)
        }
        for t, k in expected.items():
            assert int((test.defect_type == t).sum()) == k
        frame = test.frame
        assert frame["image_id"].is_unique and frame["path"].is_unique
        assert (frame["category"] == cat).all() and (frame["split"] == "test").all()
        for row in frame.itertuples():
            stem = os.path.splitext(os.path.basename(row.path))[0]
            assert row.image_id == f"{cat}/test/{row.defect_type}/{stem}"
            assert os.path.basename(os.path.dirname(row.path)) == row.defect_type
            assert row.label == int(row.defect_type != "good")
            if row.label:
                assert row.mask_path == os.path.join(
                    root, cat, "ground_truth", row.defect_type, f"{stem}_mask.png"
                )
                assert read_mask(row.mask_path).any()
            else:
                assert row.mask_path is None
        # deterministic, sorted order: good first, then the defect types alphabetically
        order = [t for t in frame["defect_type"]]
        assert order == sorted(order, key=lambda t: (t != "good", t))
        assert test.paths == load_mvtec(root, cat, split="test").paths


def test_any_category_name_and_listing(tmp_path, small_root):
    shutil.copytree(os.path.join(small_root, "bottle"), tmp_path / "data" / "my widget")
    os.makedirs(tmp_path / "data" / "not_a_category")  # no train/ or test/: not listed
    assert list_categories(small_root) == ["bottle", "my widget"]
    data = load_mvtec(small_root, "my widget", split="test")
    assert set(data.frame["category"]) == {"my widget"}
    assert data.frame["image_id"].str.startswith("my widget/test/").all()


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mvtec(tmp_path / "nowhere", "bottle")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_categories(tmp_path / "nowhere")


def test_missing_category_lists_what_was_found(small_root):
    with pytest.raises(ValueError, match=r"'cable' not found.*\['bottle'\]"):
        load_mvtec(small_root, "cable")


def test_bad_split(small_root):
    with pytest.raises(ValueError, match="split"):
        load_mvtec(small_root, "bottle", split="val")


def test_anomalous_image_without_mask(small_root):
    mask = os.path.join(small_root, "bottle", "ground_truth", "broken_large", "000_mask.png")
    os.remove(mask)
    with pytest.raises(FileNotFoundError, match=r"broken_large.*000\.png.*no mask.*000_mask\.png"):
        load_mvtec(small_root, "bottle", split="test")
    load_mvtec(small_root, "bottle", split="train")  # train does not need masks


def test_mask_size_differs_from_image(small_root):
    mask = os.path.join(small_root, "bottle", "ground_truth", "contamination", "000_mask.png")
    Image.fromarray(np.zeros((20, 32), np.uint8)).save(mask)
    with pytest.raises(ValueError, match=r"000_mask\.png.*32x20.*32x32"):
        load_mvtec(small_root, "bottle", split="test")


def test_corrupt_and_truncated_images(small_root):
    good = os.path.join(small_root, "bottle", "train", "good", "001.png")
    with open(good, "wb") as fh:
        fh.write(b"this is not a png")
    with pytest.raises(ValueError, match=r"001\.png"):
        load_mvtec(small_root, "bottle", validate=True)
    train = load_mvtec(small_root, "bottle")  # cheap default: found when decoded
    with pytest.raises(ValueError, match=r"001\.png"):
        load_images(train.paths)

    defect = os.path.join(small_root, "bottle", "test", "broken_small", "000.png")
    data = open(defect, "rb").read()
    with open(defect, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"broken_small.*000\.png"):
        load_mvtec(small_root, "bottle", split="test", validate=True)
    test = load_mvtec(small_root, "bottle", split="test")  # header intact: passes without validate
    with pytest.raises(ValueError, match=r"broken_small.*000\.png"):
        load_images(test.paths)


def test_empty_train_folder(small_root):
    folder = os.path.join(small_root, "bottle", "train", "good")
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    open(os.path.join(folder, ".DS_Store"), "w").close()
    with pytest.raises(ValueError, match=r"train.*good.*no images"):
        load_mvtec(small_root, "bottle")
    shutil.rmtree(folder)
    with pytest.raises(FileNotFoundError, match=r"train.*good"):
        load_mvtec(small_root, "bottle")


def test_stray_files_skipped_and_nothing_written(small_root):
    cat = os.path.join(small_root, "bottle")
    for folder in ["train/good", "test/good", "test/broken_large", "ground_truth/broken_large", ""]:
        for stray in [".DS_Store", "Thumbs.db", "notes.txt", "._000.png"]:
            with open(os.path.join(cat, folder, stray), "w") as fh:
                fh.write("junk")
    os.makedirs(os.path.join(cat, "test", ".ipynb_checkpoints"))
    before = file_states(small_root)
    data = load_mvtec(small_root, "bottle", split="all", validate=True)
    assert len(data.paths) == 3 + 2 + 3
    assert all(p.endswith(".png") and not os.path.basename(p).startswith(".") for p in data.paths)
    assert set(data.defect_type) == {"good", "broken_large", "broken_small", "contamination"}
    load_masks(data.mask_paths, size=8)
    assert file_states(small_root) == before


def test_load_masks(small_root):
    test = load_mvtec(small_root, "bottle", split="test")
    masks = load_masks(test.mask_paths)
    assert masks.dtype == bool and masks.shape == (5, 32, 32)
    assert not masks[test.target == 0].any()
    assert all(m.any() for m in masks[test.target == 1])
    np.testing.assert_array_equal(masks[2], read_mask(test.mask_paths[2]))
    assert load_masks(test.mask_paths, size=(8, 12)).shape == (5, 8, 12)
    assert load_masks([None, None], size=4).shape == (2, 4, 4)
    with pytest.raises(ValueError, match="size"):
        load_masks([None])
    with pytest.raises(ValueError, match="empty"):
        load_masks([])
    with pytest.raises(FileNotFoundError, match="missing_mask"):
        load_masks(["missing_mask.png"])
