"""MVTecDataset items and DataLoader batching with provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from mvtec_sklearn.datasets import (
    MVTecDataset,
    collate_with_provenance,
    load_images,
    load_masks,
    load_mvtec,
)
from tests._data import tiny_mvtec


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_mvtec(tmp_path_factory.mktemp("ds"), ["grid", "pill"], n_test_defect=4,
                      random_state=3)


def test_items_match_loader_and_decoder(root):
    test = load_mvtec(root, "pill", split="test")
    ds = MVTecDataset(root, "pill", split="test", image_size=24)
    assert isinstance(ds, Dataset) and len(ds) == 6
    images = load_images(test.paths, size=24, channels=3)
    masks = load_masks(test.mask_paths, size=24)
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].dtype == torch.float32 and tuple(item["image"].shape) == (3, 24, 24)
        np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(), images[i])
        assert item["mask"].dtype == torch.bool
        np.testing.assert_array_equal(item["mask"].numpy(), masks[i])
        assert item["label"] == int(test.target[i])
        assert item["path"] == test.paths[i] and item["mask_path"] == test.mask_paths[i]
        assert item["defect_type"] == test.defect_type[i]
        assert (item["category"], item["split"]) == ("pill", "test")
        assert item["image_id"] == test.frame["image_id"][i]
    assert ds[-1]["path"] == test.paths[-1]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_channels_native_size_and_bunch_input(root):
    train = load_mvtec(root, "grid")
    gray = MVTecDataset(train, channels="keep")
    assert tuple(gray[0]["image"].shape) == (1, 32, 32)
    assert tuple(MVTecDataset(train, "grid", channels=3)[0]["image"].shape) == (3, 32, 32)
    with pytest.raises(ValueError, match="disagrees"):
        MVTecDataset(train, "pill")
    with pytest.raises(ValueError, match="category is required"):
        MVTecDataset(root)
    with pytest.raises(ValueError, match="channels"):
        MVTecDataset(train, channels=2)


def test_transforms(root):
    ds = MVTecDataset(
        root,
        "grid",
        split="test",
        transform=lambda t: t * 0 + 0.5,
        mask_transform=lambda m: m.flip(-1),
    )
    plain = MVTecDataset(root, "grid", split="test")
    item, ref = ds[3], plain[3]
    assert torch.all(item["image"] == 0.5)
    assert torch.equal(item["mask"], ref["mask"].flip(-1))


def test_dataloader_keeps_provenance(root):
    ds = MVTecDataset(root, "grid", split="all", image_size=16)
    loader = DataLoader(
        ds,
        batch_size=4,
        shuffle=True,
        collate_fn=collate_with_provenance,
        generator=torch.Generator().manual_seed(0),
    )
    seen = []
    for batch in loader:
        n = len(batch["path"])
        assert tuple(batch["image"].shape) == (n, 3, 16, 16) and tuple(batch["mask"].shape) == (
            n,
            16,
            16,
        )
        assert batch["label"].dtype == torch.long
        for key in ("category", "split", "defect_type", "mask_path", "image_id"):
            assert len(batch[key]) == n
        for i in range(n):  # each image keeps its own provenance through shuffling
            item = ds.data.frame.set_index("path").loc[batch["path"][i]]
            assert batch["label"][i].item() == item["label"]
            assert batch["defect_type"][i] == item["defect_type"]
            assert batch["mask_path"][i] == item["mask_path"]
            expected = (
                load_masks([item["mask_path"]], size=16)[0]
                if item["label"]
                else np.zeros((16, 16), bool)
            )
            np.testing.assert_array_equal(batch["mask"][i].numpy(), expected)
        seen += batch["path"]
    assert sorted(seen) == sorted(ds.data.paths)


def test_collate_errors():
    with pytest.raises(ValueError, match="empty"):
        collate_with_provenance([])
    a = {"image": torch.zeros(3, 4, 4), "mask": torch.zeros(4, 4, dtype=torch.bool), "label": 0}
    b = {"image": torch.zeros(3, 5, 5), "mask": torch.zeros(5, 5, dtype=torch.bool), "label": 0}
    with pytest.raises(ValueError, match="image_size"):
        collate_with_provenance([a, b])
