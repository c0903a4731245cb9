"""A torch Dataset over one MVTec AD category, keeping each image's provenance."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from sklearn.utils import Bunch
from torch.utils.data import Dataset

from ._io import load_images, read_mask
from ._mvtec import load_mvtec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MVTecDataset", "collate_with_provenance"]

_PROVENANCE = ("category", "split", "defect_type", "path", "mask_path", "image_id")


def _as_bunch(root_or_bunch, category, split):
    if isinstance(root_or_bunch, Bunch) or (
        isinstance(root_or_bunch, dict) and "paths" in root_or_bunch and "frame" in root_or_bunch
    ):
        if category is not None and category != root_or_bunch["category"]:
            raise ValueError(
                f"category={category!r} disagrees with the given Bunch's category "
                f"{root_or_bunch['category']!r}; pass category=None with a Bunch."
            )
        return root_or_bunch
    if category is None:
        raise ValueError("category is required when a root folder is given.")
    return load_mvtec(root_or_bunch, category, split=split)


class MVTecDataset(Dataset):
    """A :class:`torch.utils.data.Dataset` over one category of an MVTec AD-style folder.

    Each item is a dict with the image, its mask, its label and its
    provenance, so that images are never identified by file number alone:

    - ``image``: float32 tensor (C, H, W) in [0, 1], RGB channel order;
    - ``mask``: bool tensor (H, W), all False for good images;
    - ``label``: int, 0 = good, 1 = anomalous;
    - ``category``, ``split``, ``defect_type``, ``path``, ``image_id``: str;
    - ``mask_path``: str or None.

    Images are decoded with :func:`load_images` (so they equal what an
    estimator sees when given the same paths) and masks with
    :func:`read_mask`. Use :func:`collate_with_provenance` as the
    ``DataLoader``'s ``collate_fn``.

    Parameters
    ----------
    root_or_bunch : str or os.PathLike or Bunch
        A folder in the MVTec AD layout, or the result of :func:`load_mvtec`.
    category : str or None, default=None
        Category to read (required with a folder; must match or be None with
        a Bunch).
    split : {"train", "test", "all"}, default="train"
        Used with a folder.
    image_size : int or (int, int) or None, default=None
        Resize images (bilinear, antialiased) and masks (nearest) to this size.
        ``None`` keeps each file's size.
    channels : {3, 1, "keep"}, default=3
        3 gives RGB (grayscale files repeated), 1 luminance, ``"keep"`` what the
        file has.
    transform : callable or None, default=None
        Applied to the image tensor.
    mask_transform : callable or None, default=None
        Applied to the mask tensor (e.g. the same geometric transform as the
        image).

    Attributes
    ----------
    data : Bunch
        The :func:`load_mvtec` result the dataset reads.

    Examples
    --------
    >>> import tempfile
    >>> from torch.utils.data import DataLoader
    >>> from mvtec_sklearn.datasets import (MVTecDataset, collate_with_provenance,
    ...                                     make_mvtec_like)
    >>> root = make_mvtec_like(tempfile.mkdtemp(), categories=["grid"], n_train=2,
    ...                        n_test_good=1, n_test_defect=2, image_size=32)
    >>> ds = MVTecDataset(root, "grid", split="test", image_size=16)
    >>> batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate_with_provenance)))
    >>> tuple(batch["image"].shape), batch["label"].tolist(), batch["mask_path"][0]
    ((3, 3, 16, 16), [0, 1, 1], None)
    """

    def __init__(
        self,
        root_or_bunch: str | os.PathLike[str] | Bunch,
        category: str | None = None,
        split: Literal["train", "test", "all"] = "train",
        image_size: int | tuple[int, int] | None = None,
        channels: int | Literal["keep"] = 3,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        mask_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if channels not in (1, 3, "keep"):
            raise ValueError(f"channels must be 1, 3 or 'keep', got {channels!r}.")
        self.data = _as_bunch(root_or_bunch, category, split)
        self.image_size = image_size
        self.channels = channels
        self.transform = transform
        self.mask_transform = mask_transform
        self._frame = self.data["frame"].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self._frame)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images.")
        row = self._frame.iloc[index]
        image = load_images([row["path"]], size=self.image_size, channels=self.channels)[0]
        mask_path = row["mask_path"]
        if mask_path is None or (isinstance(mask_path, float) and np.isnan(mask_path)):
            mask_path = None
            mask = np.zeros(image.shape[:2], dtype=bool)
        else:
            mask = read_mask(mask_path, size=image.shape[:2])
        image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        mask_t = torch.from_numpy(mask)
        if self.transform is not None:
            image_t = self.transform(image_t)
        if self.mask_transform is not None:
            mask_t = self.mask_transform(mask_t)
        return {
            "image": image_t,
            "mask": mask_t,
            "label": int(row["label"]),
            "category": row["category"],
            "split": row["split"],
            "defect_type": row["defect_type"],
            "path": os.fspath(row["path"]),
            "mask_path": mask_path,
            "image_id": row["image_id"],
        }

    def __repr__(self):
        return (
            f"MVTecDataset(category={self.data['category']!r}, split={self.data['split']!r}, "
            f"n_images={len(self)}, image_size={self.image_size!r})"
        )


def collate_with_provenance(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``DataLoader`` collate function that stacks tensors and keeps provenance as lists.

    Parameters
    ----------
    items : list of dict
        Items of :class:`MVTecDataset`.

    Returns
    -------
    batch : dict
        ``image`` (B, C, H, W) and ``mask`` (B, H, W) stacked, ``label`` a long
        tensor (B,), and ``category``, ``split``, ``defect_type``, ``path``,
        ``mask_path`` (None for good images) and ``image_id`` as lists.

    Raises
    ------
    ValueError
        Empty batch, or images of different sizes (set ``image_size`` on the
        dataset).

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.datasets import collate_with_provenance
    >>> item = {"image": torch.zeros(3, 4, 4), "mask": torch.zeros(4, 4, dtype=torch.bool),
    ...         "label": 0, "category": "c", "split": "test", "defect_type": "good",
    ...         "path": "a.png", "mask_path": None, "image_id": "c/test/good/a"}
    >>> batch = collate_with_provenance([item, item])
    >>> tuple(batch["image"].shape), batch["mask_path"]
    ((2, 3, 4, 4), [None, None])
    """
    if not items:
        raise ValueError("Cannot collate an empty batch.")
    shapes = {tuple(it["image"].shape) for it in items}
    if len(shapes) > 1:
        raise ValueError(
            f"Images in a batch have different shapes {sorted(shapes)}; "
            "set image_size on the dataset."
        )
    batch: dict[str, Any] = {
        "image": torch.stack([it["image"] for it in items]),
        "mask": torch.stack([it["mask"] for it in items]),
        "label": torch.as_tensor([it["label"] for it in items], dtype=torch.long),
    }
    for key in _PROVENANCE:
        batch[key] = [it.get(key) for it in items]
    return batch
