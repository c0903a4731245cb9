"""Reading a folder in the MVTec AD layout into paths with provenance.

Layout (numbers restart at 000 in every folder)::

    root/<category>/train/good/000.png
    root/<category>/test/good/000.png
    root/<category>/test/<defect>/000.png
    root/<category>/ground_truth/<defect>/000_mask.png

Nothing is ever written into the dataset folder.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

from mvtec_sklearn.utils import check_size_pair

from ._io import IMAGE_EXTENSIONS, read_mask

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

__all__ = [
    "CATEGORIES",
    "TEXTURE_CATEGORIES",
    "OBJECT_CATEGORIES",
    "CATEGORY_GROUPS",
    "list_categories",
    "load_mvtec",
    "load_masks",
]

#: The 15 MVTec AD categories.
CATEGORIES = (
    "bottle",
    "cable",
    "capsule",
    "carpet",
    "grid",
    "hazelnut",
    "leather",
    "metal_nut",
    "pill",
    "screw",
    "tile",
    "toothbrush",
    "transistor",
    "wood",
    "zipper",
)
#: MVTec AD's texture categories.
TEXTURE_CATEGORIES = ("carpet", "grid", "leather", "tile", "wood")
#: MVTec AD's object categories.
OBJECT_CATEGORIES = tuple(c for c in CATEGORIES if c not in TEXTURE_CATEGORIES)
#: The grouping used in the exploration plots.
CATEGORY_GROUPS = {
    "texture-based": ["carpet", "leather", "tile", "wood", "zipper"],
    "industrial components": ["cable", "grid", "metal_nut", "screw", "transistor"],
    "consumer products": ["bottle", "capsule", "toothbrush"],
    "edible": ["hazelnut", "pill"],
}

_GOOD = "good"
_FRAME_COLUMNS = ["category", "split", "defect_type", "label", "image_id", "path", "mask_path"]


def _is_image_file(folder, name):
    """Image files only: hidden files, ``Thumbs.db``, text files and folders are skipped."""
    return (
        not name.startswith(".")
        and name.lower().endswith(IMAGE_EXTENSIONS)
        and os.path.isfile(os.path.join(folder, name))
    )


def _image_files(folder):
    return sorted(name for name in os.listdir(folder) if _is_image_file(folder, name))


def _id_parts(names):
    """The ``image_id`` part of each file name: its stem, or the whole name when the
    stem is shared in the folder (``000.png`` and ``000.jpg``)."""
    stems = [os.path.splitext(name)[0] for name in names]
    return [name if stems.count(stem) > 1 else stem for name, stem in zip(names, stems)]


def _subfolders(folder):
    return sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith(".") and os.path.isdir(os.path.join(folder, name))
    )


def _check_root(root):
    if root is None:
        raise ValueError("root must be a folder in the MVTec AD layout, got None.")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"MVTec AD root folder not found: {root!r}")
    return root


def list_categories(root: str | os.PathLike[str]) -> list[str]:
    """The categories found under ``root`` (sub-folders with a ``train`` or ``test`` folder).

    Parameters
    ----------
    root : str or os.PathLike
        A folder in the MVTec AD layout.

    Returns
    -------
    categories : list of str
        Sorted category names; any names, not only the 15 of MVTec AD.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.datasets import make_mvtec_like, list_categories
    >>> root = make_mvtec_like(tempfile.mkdtemp(), categories=["grid", "bottle"],
    ...                        n_train=1, n_test_good=0, n_test_defect=0, image_size=32)
    >>> list_categories(root)
    ['bottle', 'grid']
    """
    root = _check_root(root)
    return [
        name
        for name in _subfolders(root)
        if any(os.path.isdir(os.path.join(root, name, s)) for s in ("train", "test"))
    ]


def _header_size(path, validate):
    """(width, height) from the file header; with ``validate`` also verify the whole file."""
    try:
        with Image.open(path) as img:
            size = img.size
            if validate:
                img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"Corrupt or unreadable image file {path!r}: {exc}") from exc
    return size


def _find_mask(gt_dir, stem):
    """The mask of image ``stem``: ``<stem>_mask.<ext>`` (any image extension)."""
    if os.path.isdir(gt_dir):
        for ext in IMAGE_EXTENSIONS:
            for cand in (f"{stem}_mask{ext}", f"{stem}_mask{ext.upper()}"):
                if os.path.isfile(os.path.join(gt_dir, cand)):
                    return os.path.join(gt_dir, cand)
    return None


def _rows_train(cat_dir, category, validate):
    folder = os.path.join(cat_dir, "train", _GOOD)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Training folder not found: {folder!r}")
    names = _image_files(folder)
    if not names:
        raise ValueError(f"Training folder {folder!r} contains no images.")
    rows = []
    for name, part in zip(names, _id_parts(names)):
        path = os.path.join(folder, name)
        if validate:
            _header_size(path, True)
        rows.append((category, "train", _GOOD, 0, f"{category}/train/{_GOOD}/{part}", path, None))
    return rows


def _rows_test(cat_dir, category, validate):
    test_dir = os.path.join(cat_dir, "test")
    if not os.path.isdir(test_dir):
        raise FileNotFoundError(f"Test folder not found: {test_dir!r}")
    defect_types = _subfolders(test_dir)
    # good first, then the defect types in sorted order
    defect_types = [d for d in defect_types if d == _GOOD] + [d for d in defect_types if d != _GOOD]
    rows = []
    for defect in defect_types:
        folder = os.path.join(test_dir, defect)
        gt_dir = os.path.join(cat_dir, "ground_truth", defect)
        names = _image_files(folder)
        for name, part in zip(names, _id_parts(names)):
            path = os.path.join(folder, name)
            stem = os.path.splitext(name)[0]
            mask_path = None
            if defect != _GOOD:
                mask_path = _find_mask(gt_dir, stem)
                if mask_path is None:
                    raise FileNotFoundError(
                        f"Anomalous image {path!r} has no mask: expected "
                        f"{os.path.join(gt_dir, stem + '_mask.png')!r}."
                    )
                img_size = _header_size(path, validate)
                mask_size = _header_size(mask_path, validate)
                if img_size != mask_size:
                    raise ValueError(
                        f"Mask {mask_path!r} is {mask_size[0]}x{mask_size[1]} (WxH) but its image "
                        f"{path!r} is {img_size[0]}x{img_size[1]}."
                    )
            elif validate:
                _header_size(path, True)
            label = int(defect != _GOOD)
            rows.append(
                (
                    category,
                    "test",
                    defect,
                    label,
                    f"{category}/test/{defect}/{part}",
                    path,
                    mask_path,
                )
            )
    if not rows:
        raise ValueError(f"Test folder {test_dir!r} contains no images.")
    return rows


@validate_params(
    {"split": [StrOptions({"train", "test", "all"})]},
    prefer_skip_nested_validation=True,
)
def load_mvtec(
    root: str | os.PathLike[str],
    category: str,
    split: Literal["train", "test", "all"] = "train",
    validate: bool = False,
) -> Bunch:
    """Load one category of a dataset in the MVTec AD layout as paths with provenance.

    Images are not decoded: the result holds file paths, labels and where each
    image came from. Pass ``paths`` to any estimator of this package (or decode
    with :func:`load_images`); :class:`MVTecDataset` gives a torch Dataset.

    Parameters
    ----------
    root : str or os.PathLike
        Folder in the MVTec AD layout (the original dataset or one written by
        :func:`make_mvtec_like`).
    category : str
        A category folder under ``root``; any name, not only the 15 of
        MVTec AD.
    split : {"train", "test", "all"}, default="train"
        ``"all"`` is the training images followed by the test images.
    validate : bool, default=False
        Also verify every image and mask file completely (PIL ``verify``:
        headers and checksums, no pixel decoding), so corrupt or truncated
        files fail here rather than when decoded. Without it, only the
        headers of anomalous images and their masks are read (to check that
        their sizes agree), and a corrupt file raises a ``ValueError`` naming
        it when it is decoded.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        - ``paths``: list of str, image files in a deterministic order
          (train; then test ``good`` followed by the defect types,
          alphabetically; files sorted by name).
        - ``target``: ndarray of int, 0 = good, 1 = anomalous.
        - ``defect_type``: ndarray of str (``"good"`` for normal images).
        - ``mask_paths``: list of str or None (None for good images).
        - ``category``, ``split``, ``root``: str.
        - ``frame``: DataFrame with one row per image and columns
          ``category, split, defect_type, label, image_id, path, mask_path``;
          ``image_id`` is ``"<category>/<split>/<defect_type>/<stem>"``, unique
          (file numbers restart in every folder; where two files of a folder
          share a stem, e.g. ``000.png`` and ``000.jpg``, their whole file
          names are used instead of the stem).

    Raises
    ------
    FileNotFoundError
        Missing root, train or test folder, or an anomalous image without its
        mask (the message names the file).
    ValueError
        Unknown category (the message lists the categories found), bad
        ``split``, an empty folder, a mask whose size differs from its image,
        or (with ``validate=True``) a corrupt file.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.datasets import make_mvtec_like, load_mvtec
    >>> root = make_mvtec_like(tempfile.mkdtemp(), categories=["carpet"], n_train=4,
    ...                        n_test_good=2, n_test_defect=5, image_size=32)
    >>> train = load_mvtec(root, "carpet")
    >>> len(train.paths), int(train.target.sum())
    (4, 0)
    >>> test = load_mvtec(root, "carpet", split="test")
    >>> test.frame[["defect_type", "label"]].value_counts().sort_index().tolist()
    [1, 1, 2, 1, 1, 1]
    """
    root = _check_root(root)
    category = os.fspath(category) if isinstance(category, os.PathLike) else category
    found = list_categories(root)
    if not isinstance(category, str) or category not in found:
        raise ValueError(
            f"Category {category!r} not found under {root!r}; found: "
            f"{found if found else 'no category folders (with train/ or test/)'}."
        )
    cat_dir = os.path.join(root, category)
    rows = []
    if split in ("train", "all"):
        rows += _rows_train(cat_dir, category, validate)
    if split in ("test", "all"):
        rows += _rows_test(cat_dir, category, validate)
    frame = pd.DataFrame(rows, columns=_FRAME_COLUMNS)
    frame["label"] = frame["label"].astype(np.int64)
    frame["mask_path"] = frame["mask_path"].astype(object).where(frame["mask_path"].notna(), None)
    return Bunch(
        paths=frame["path"].tolist(),
        target=frame["label"].to_numpy(),
        defect_type=frame["defect_type"].to_numpy(dtype=object),
        mask_paths=frame["mask_path"].tolist(),
        category=category,
        split=split,
        root=root,
        frame=frame,
    )


def load_masks(
    mask_paths: Sequence[str | os.PathLike[str] | None], size: int | tuple[int, int] | None = None
) -> NDArray[np.bool_]:
    """Decode ground-truth masks into one bool array; ``None`` entries give all-False masks.

    Parameters
    ----------
    mask_paths : sequence of (str or os.PathLike or None)
        Mask files, e.g. ``load_mvtec(...).mask_paths``.
    size : int or (int, int) or None, default=None
        Output ``(height, width)`` (nearest-neighbour resizing). Required when
        every entry is None or the masks differ in size.

    Returns
    -------
    masks : ndarray of bool, shape (n, H, W)

    Raises
    ------
    ValueError
        Empty input, no size to use, or masks of different sizes without
        ``size``.
    FileNotFoundError
        A mask file that does not exist.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.datasets import make_mvtec_like, load_mvtec, load_masks
    >>> root = make_mvtec_like(tempfile.mkdtemp(), categories=["tile"], n_train=1,
    ...                        n_test_good=1, n_test_defect=2, image_size=32)
    >>> test = load_mvtec(root, "tile", split="test")
    >>> masks = load_masks(test.mask_paths, size=16)
    >>> masks.shape, bool(masks[0].any()), bool(masks[1].any())
    ((3, 16, 16), False, True)
    """
    mask_paths = list(mask_paths)
    if not mask_paths:
        raise ValueError("Found an empty sequence of mask paths; at least one is required.")
    if size is not None:
        size = check_size_pair(size)
    decoded = [None if p is None else read_mask(p, size=size) for p in mask_paths]
    shapes = {m.shape for m in decoded if m is not None}
    if size is None:
        if not shapes:
            raise ValueError("All mask paths are None; pass size= to get all-False masks.")
        if len(shapes) > 1:
            raise ValueError(
                f"Masks have different sizes {sorted(shapes)}; pass size= to resize them."
            )
        size = shapes.pop()
    out = np.zeros((len(decoded), *size), dtype=bool)
    for i, m in enumerate(decoded):
        if m is not None:
            out[i] = m
    return out
