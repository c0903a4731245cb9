"""The synthetic MVTec-format generator: layout, determinism, fairness of the defects."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from mvtec_sklearn.datasets import (
    CATEGORIES,
    list_categories,
    load_mvtec,
    make_mvtec_like,
    read_image,
    read_mask,
    synthetic_defect_types,
    synthetic_root,
)
from tests._data import file_contents, tiny_mvtec


def test_layout_names_and_counts(tmp_path):
    root = tiny_mvtec(tmp_path, ["bottle", "screw"], n_test_defect=4, image_size=40, random_state=1)
    assert root == str(tmp_path)
    assert list_categories(root) == ["bottle", "screw"]
    bottle = tmp_path / "bottle"
    assert sorted(os.listdir(bottle)) == ["ground_truth", "test", "train"]
    assert sorted(os.listdir(bottle / "train" / "good")) == ["000.png", "001.png", "002.png"]
    assert sorted(os.listdir(bottle / "test")) == [
        "broken_large",
        "broken_small",
        "contamination",
        "good",
    ]
    # 4 defect images over 3 types: the first type gets the remainder, numbering restarts at 000
    assert sorted(os.listdir(bottle / "test" / "broken_large")) == ["000.png", "001.png"]
    assert sorted(os.listdir(bottle / "test" / "broken_small")) == ["000.png"]
    assert sorted(os.listdir(bottle / "ground_truth" / "broken_large")) == [
        "000_mask.png",
        "001_mask.png",
    ]
    assert sorted(os.listdir(bottle / "ground_truth")) == [
        "broken_large",
        "broken_small",
        "contamination",
    ]
    # screw: 5 types, 4 images -> the last type gets no folder at all
    screw_types = synthetic_defect_types("screw")
    assert sorted(os.listdir(tmp_path / "screw" / "test")) == sorted(["good", *screw_types[:4]])
    assert not (tmp_path / "screw" / "ground_truth" / screw_types[4]).exists()


def test_channels_and_default_sizes(tmp_path):
    make_mvtec_like(
        tmp_path,
        categories=["grid", "screw", "zipper", "bottle", "metal_nut"],
        n_train=1,
        n_test_good=0,
        n_test_defect=1,
    )
    sizes = {}
    for cat in ["grid", "screw", "zipper", "bottle", "metal_nut"]:
        with Image.open(tmp_path / cat / "train" / "good" / "000.png") as img:
            assert img.mode == ("L" if cat in ("grid", "screw", "zipper") else "RGB")
            assert img.width == img.height
            sizes[cat] = img.width
        defect = os.listdir(tmp_path / cat / "ground_truth")[0]
        with Image.open(tmp_path / cat / "ground_truth" / defect / "000_mask.png") as mask:
            assert mask.mode == "L" and mask.size == (sizes[cat], sizes[cat])
            assert set(np.unique(np.asarray(mask))) <= {0, 255}
    assert all(64 <= s <= 128 for s in sizes.values())
    assert len(set(sizes.values())) > 1  # categories have their own sizes


def test_deterministic_and_independent_of_other_categories(tmp_path):
    kwargs = dict(n_train=2, n_test_good=1, n_test_defect=3, image_size=32)
    a = make_mvtec_like(tmp_path / "a", categories=["carpet"], random_state=7, **kwargs)
    b = make_mvtec_like(tmp_path / "b", categories=["pill", "carpet"], random_state=7, **kwargs)
    c = make_mvtec_like(tmp_path / "c", categories=["carpet"], random_state=8, **kwargs)
    tree_a, tree_b, tree_c = file_contents(a), file_contents(os.path.join(b)), file_contents(c)
    carpet_b = {k: v for k, v in tree_b.items() if k.startswith("carpet")}
    assert tree_a == carpet_b
    assert tree_a.keys() == tree_c.keys()
    assert all(tree_a[k] != tree_c[k] for k in tree_a)  # another seed: other pixels
    # every image differs from every other (no repeated seed across folders)
    images = [read_image(os.path.join(a, k)) for k in tree_a if not k.endswith("_mask.png")]
    assert len({im.tobytes() for im in images}) == len(images)


def test_existing_category_needs_overwrite(tmp_path):
    kwargs = dict(categories=["wood"], n_train=1, n_test_good=0, n_test_defect=0, image_size=32)
    make_mvtec_like(tmp_path, **kwargs)
    with pytest.raises(FileExistsError, match="wood"):
        make_mvtec_like(tmp_path, **kwargs)
    make_mvtec_like(tmp_path, overwrite=True, **{**kwargs, "n_train": 2})
    assert len(os.listdir(tmp_path / "wood" / "train" / "good")) == 2


def test_placed_draws_the_centre_then_the_seed():
    from mvtec_sklearn.datasets._synthetic import _placed

    params = _placed(np.random.default_rng(7), 0.02)
    rng = np.random.default_rng(7)  # the same draws, written out
    cx, cy = 0.5 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.02)
    assert params == {"seed": int(rng.integers(2**31 - 1)), "cx": cx, "cy": cy}
    assert list(params) == ["seed", "cx", "cy"]


def test_write_dataset_writes_every_category_with_its_counts_and_masks(tmp_path):
    from mvtec_sklearn.datasets._synthetic import _write_dataset

    calls = []

    def render(category, folder, index):
        calls.append((category, folder, index))
        image = np.full((8, 8), len(calls), np.uint8)
        return image, (None if folder.endswith("good") else image > 0)

    root = _write_dataset(tmp_path / "out", ["a", "b"], False, (2, 1, 3),
                          lambda category: ["x", "y"], render)
    assert root == os.fspath(tmp_path / "out") and list_categories(root) == ["a", "b"]
    test = load_mvtec(root, "b", split="test")
    assert sorted(test.defect_type) == ["good", "x", "x", "y"]  # 3 defects: x gets the remainder
    assert len(load_mvtec(root, "a").paths) == 2
    assert [c for c in calls if c[0] == "a"] == [
        ("a", "train/good", 0), ("a", "train/good", 1), ("a", "test/good", 0),
        ("a", "test/x", 0), ("a", "test/x", 1), ("a", "test/y", 0),
    ]
    assert read_mask(tmp_path / "out" / "a" / "ground_truth" / "y" / "000_mask.png").all()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _write_dataset(root, ["a"], False, (1, 0, 0), lambda category: [], render)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"categories": ["bottle", "spoon"]}, "spoon"),
        ({"categories": []}, "empty"),
        ({"n_train": 0}, "n_train"),
        ({"n_test_good": -1}, "n_test_good"),
        ({"n_test_defect": 1.5}, "n_test_defect"),
        ({"image_size": 8}, "image_size"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_make_mvtec_like_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_mvtec_like(tmp_path, **kwargs)


def test_all_categories_have_several_defect_types():
    assert len(CATEGORIES) == 15
    counts = {c: len(synthetic_defect_types(c)) for c in CATEGORIES}
    assert counts["toothbrush"] >= 1
    assert all(k >= 3 for c, k in counts.items() if c != "toothbrush")
    with pytest.raises(ValueError, match="Unknown"):
        synthetic_defect_types("spoon")


N_PER_GROUP = 24


@pytest.mark.parametrize("category", CATEGORIES)
def test_defects_not_given_away_by_mean_intensity(tmp_path, category):
    """Per defect type: masks cover 0.1-20 %; the image mean does not separate it (AUROC < 0.8)."""
    types = synthetic_defect_types(category)
    make_mvtec_like(
        tmp_path,
        categories=[category],
        n_train=1,
        n_test_good=N_PER_GROUP,
        n_test_defect=N_PER_GROUP * len(types),
        image_size=48,
        random_state=0,
    )
    test = load_mvtec(tmp_path, category, split="test")
    means = np.array([read_image(p).mean() for p in test.paths])
    good = means[test.defect_type == "good"]
    for defect in types:
        sel = test.defect_type == defect
        assert sel.sum() == N_PER_GROUP
        auc = roc_auc_score(np.r_[np.zeros(len(good)), np.ones(sel.sum())], np.r_[good, means[sel]])
        assert max(auc, 1 - auc) < 0.8, (category, defect, auc)
        coverage = np.array(
            [read_mask(m).mean() for m in np.asarray(test.mask_paths, dtype=object)[sel]]
        )
        assert coverage.min() >= 0.001 and coverage.max() <= 0.20, (category, defect, coverage)


def test_synthetic_root_generates_once_and_keys_on_settings(tmp_path):
    kwargs = dict(categories=["grid"], n_train=2, n_test_good=1, n_test_defect=1, image_size=32)
    root = synthetic_root(tmp_path, **kwargs)
    assert os.path.dirname(root) == str(tmp_path)
    assert list_categories(root) == ["grid"]
    stamp = os.stat(os.path.join(root, "grid", "train", "good", "000.png")).st_mtime_ns
    assert synthetic_root(tmp_path, **kwargs) == root
    assert os.stat(os.path.join(root, "grid", "train", "good", "000.png")).st_mtime_ns == stamp
    other = synthetic_root(tmp_path, **{**kwargs, "image_size": 40})
    assert other != root
    assert synthetic_root(tmp_path, **{**kwargs, "random_state": 1}) not in (root, other)
    # only finished folders, no temporary ones left behind
    assert all(name.startswith("synthetic-") for name in os.listdir(tmp_path))


def test_synthetic_root_uses_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MVTEC_SKLEARN_DATA", str(tmp_path / "home"))
    root = synthetic_root(
        categories=["tile"], n_train=1, n_test_good=0, n_test_defect=0, image_size=32
    )
    assert root.startswith(str(tmp_path / "home"))


@pytest.mark.parametrize(
    "kwargs, error",
    [({"root": "x"}, TypeError), ({"colour": 1}, TypeError), ({"random_state": None}, ValueError)],
)
def test_synthetic_root_rejects_bad_arguments(tmp_path, kwargs, error):
    with pytest.raises(error):
        synthetic_root(tmp_path, **kwargs)
