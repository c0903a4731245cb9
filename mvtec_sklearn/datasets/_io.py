"""The one image / mask decoding function and image-batch validation.

Everything in the package that reads a picture from disk goes through
:func:`read_image` (and :func:`read_mask`, which is :func:`read_image` plus
binarisation), so that PNG, JPEG, BMP and TIFF files with 1, 3 or 4 channels
and 8 or 16 bits are handled the same way everywhere.
"""

from __future__ import annotations

import contextlib
import os
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, cast

import numpy as np
from sklearn.utils._param_validation import Options, StrOptions, validate_params

from mvtec_sklearn.utils import check_size_pair, torch_threads
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = [
    "read_image",
    "read_image_size",
    "read_mask",
    "load_images",
    "is_path_sequence",
    "check_image_input",
]

#: File name endings (lower case) of the image files the readers list and decode.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# PIL modes with more than 8 bits per pixel (16-bit PNG/TIFF, 32-bit integer and float TIFF).
_DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale an integer or float array of any depth to uint8."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        # 16-bit (and 32-bit "I" mode) PNG/TIFF: scale by the type's range.
        maxval = 65535 if arr.max(initial=0) > 255 or arr.dtype in (np.uint16, np.int32) else 255
        return np.clip(np.round(arr.astype(np.float64) * (255.0 / maxval)), 0, 255).astype(np.uint8)
    # float TIFF: assume [0, 1]
    return np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


@contextlib.contextmanager
def _opened(path: str, what: str = "image") -> Iterator[Image.Image]:
    """``Image.open(path)``; a file PIL cannot decode raises a ValueError that names it.

    Errors raised inside the ``with`` block by PIL (a truncated file found
    while decoding) are turned into that ValueError too.
    """
    try:
        with Image.open(path) as img:
            yield img
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"Cannot decode {what} file {path!r}: {exc}") from exc


def _check_file(path: str | os.PathLike[str]) -> str:
    """``path`` as a str; FileNotFoundError when it is not a file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file not found: {path!r}")
    return path


@validate_params(
    {
        "mode": [StrOptions({"keep", "RGB", "L"})],
        "resample": [StrOptions({"bilinear", "nearest", "bicubic", "box"})],
    },
    prefer_skip_nested_validation=True,
)
def read_image(
    path: str | os.PathLike[str],
    size: int | tuple[int, int] | None = None,
    mode: str = "keep",
    resample: str = "bilinear",
) -> NDArray[np.uint8]:
    """Decode one image file into a uint8 array.

    Parameters
    ----------
    path : str or os.PathLike
        Image file (PNG, JPEG, BMP or TIFF; 1-channel, RGB, RGBA, 16-bit).
    size : int or (int, int) or None, default=None
        Output ``(height, width)``; an int gives a square. ``None`` keeps the
        file's size.
    mode : {"keep", "RGB", "L"}, default="keep"
        ``"keep"`` returns (H, W) for single-channel files and (H, W, 3) for
        colour files (alpha is dropped); ``"RGB"`` always returns (H, W, 3);
        ``"L"`` always returns (H, W) luminance (ITU-R 601-2, as PIL).
    resample : {"bilinear", "nearest", "bicubic", "box"}, default="bilinear"
        Interpolation used when ``size`` is given (``"box"`` averages the
        source pixels that each output pixel covers).

    Returns
    -------
    image : ndarray of uint8, shape (H, W) or (H, W, 3)

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a readable image (corrupt, truncated or another
        format); the message names the file.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from mvtec_sklearn.datasets import read_image
    >>> path = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> Image.fromarray(np.zeros((8, 6), np.uint8)).save(path)
    >>> read_image(path).shape, read_image(path, mode="RGB", size=4).shape
    ((8, 6), (4, 4, 3))
    """
    path = _check_file(path)
    resample_map = {
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
        "bicubic": Image.Resampling.BICUBIC,
        "box": Image.Resampling.BOX,
    }
    img: Image.Image  # Image.open gives an ImageFile; convert/resize give plain Images
    with _opened(path) as img:
        img.load()
        if img.mode in _DEEP_MODES:
            arr = _to_uint8(np.asarray(img))
            img = Image.fromarray(arr, mode="L")
        elif img.mode in ("RGBA", "LA", "P", "PA", "CMYK", "YCbCr", "1", "RGBX"):
            img = img.convert("L" if img.mode in ("LA", "1") else "RGB")
        elif img.mode not in ("L", "RGB"):
            img = img.convert("RGB")
        if mode == "RGB" and img.mode != "RGB":
            img = img.convert("RGB")
        elif mode == "L" and img.mode != "L":
            img = img.convert("L")
        if size is not None:
            h, w = check_size_pair(size)
            if (img.height, img.width) != (h, w):
                img = img.resize((int(w), int(h)), resample_map[resample])
        arr = np.asarray(img, dtype=np.uint8).copy()
    return arr


def read_mask(
    path: str | os.PathLike[str], size: int | tuple[int, int] | None = None
) -> NDArray[np.bool_]:
    """Decode a ground-truth mask file into a bool array (white = defect).

    Uses :func:`read_image` and binarises with ``> 0``; 16- and 32-bit files
    are binarised on their raw values, so a mask stored as 0/1 in 16 bits
    keeps its defect pixels. When resizing, each
    output pixel averages the source pixels it covers (box filter), so a
    resized pixel is a defect pixel when any defect pixel falls inside it:
    thin scratches survive downsampling instead of vanishing.

    Parameters
    ----------
    path : str or os.PathLike
        Mask file.
    size : int or (int, int) or None, default=None
        Output ``(height, width)``.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from mvtec_sklearn.datasets import read_mask
    >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> Image.fromarray(np.eye(4, dtype=np.uint8) * 255).save(path)
    >>> int(read_mask(path).sum())
    4
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        with _opened(path, "mask") as img:
            deep = img.mode in _DEEP_MODES
            if deep:
                img.load()
                raw = np.asarray(img)
        if deep:
            # Binarise the raw 16/32-bit values: scaling to 8 bits first would turn
            # small non-zero values (a 0/1 mask) into 0.
            mask = (raw.reshape(raw.shape[:2]) > 0).astype(np.uint8) * 255
            if size is not None:
                h, w = check_size_pair(size)
                if mask.shape != (h, w):
                    mask = np.asarray(
                        Image.fromarray(mask).resize((w, h), Image.Resampling.BOX)
                    )
            return mask > 0
    return read_image(path, size=size, mode="L", resample="box") > 0


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """The ``(height, width)`` of an image file, from its header (no decoding).

    Parameters
    ----------
    path : str or os.PathLike
        Image file.

    Returns
    -------
    (int, int)

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a readable image; the message names it.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from mvtec_sklearn.datasets import read_image_size
    >>> path = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> Image.fromarray(np.zeros((8, 6), np.uint8)).save(path)
    >>> read_image_size(path)
    (8, 6)
    """
    with _opened(_check_file(path)) as img:
        width, height = img.size
    return int(height), int(width)


def is_path_sequence(X: object) -> TypeGuard[Iterable[str | os.PathLike[str]]]:
    """True when ``X`` is a non-empty sequence (list, tuple, 1-D array, Series) of paths.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.datasets import is_path_sequence
    >>> is_path_sequence(["a.png", "b.png"]), is_path_sequence(np.zeros((2, 4, 4)))
    (True, False)
    """
    if isinstance(X, (str, bytes, os.PathLike)):
        return False
    if isinstance(X, np.ndarray) and (X.ndim != 1 or X.dtype.kind not in "USO"):
        return False
    if hasattr(X, "tolist") and not isinstance(X, np.ndarray):  # pandas Series / Index
        X = X.tolist()
    try:
        seq = cast("Sequence[object]", X)  # anything else raises the TypeError caught below
        return len(seq) > 0 and all(isinstance(p, (str, os.PathLike)) for p in seq)
    except TypeError:
        return False


def check_image_input(
    X: Sequence[str | os.PathLike[str]] | ArrayLike,
) -> tuple[list[str] | None, np.ndarray | None]:
    """Check images given as paths or an array without decoding them.

    Paths are checked for existence; arrays for emptiness, number of
    dimensions, channel count and dtype. Anything invalid is handed to
    :func:`load_images`, whose error message names the problem, so every
    estimator reports bad input in the same words.

    Parameters
    ----------
    X : sequence of str / os.PathLike, or array-like of images

    Returns
    -------
    paths : list of str or None
        The file paths, when ``X`` is a sequence of paths.
    array : ndarray or None
        The images, when ``X`` is an array (unconverted: uint8 or float).

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    ValueError
        Empty input, wrong number of dimensions or channels (including an
        unbatched (H, W, 3) image), or a non-numeric array.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.datasets import check_image_input
    >>> paths, array = check_image_input(np.zeros((2, 8, 8, 3), np.uint8))
    >>> paths is None, array.shape
    (True, (2, 8, 8, 3))
    """
    if is_path_sequence(X):
        return [_check_file(p) for p in X], None
    if isinstance(X, (str, os.PathLike)) or (isinstance(X, (list, tuple)) and len(X) == 0):
        load_images(X)  # raises the package's error for a bare path / an empty sequence
    try:
        arr = np.asarray(X)
    except ValueError:  # ragged nested sequences
        arr = None
    if (
        arr is None
        or arr.dtype.kind not in "biuf"
        or arr.ndim not in (3, 4)
        or arr.size == 0
        or (arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4))
        or (arr.ndim == 3 and arr.shape[-1] in (3, 4))  # one (H, W, C) image, no batch axis
    ):
        load_images(X)  # raises a ValueError that names the problem
    return None, arr


@validate_params(
    {"channels": [StrOptions({"keep"}), Options(Integral, {1, 3})]},
    prefer_skip_nested_validation=True,
)
def load_images(
    X: Sequence[str | os.PathLike[str]] | ArrayLike,
    size: int | tuple[int, int] | None = None,
    channels: int | Literal["keep"] = "keep",
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Validate images given as paths or an array and return one float array.

    This is the input contract of every image-input estimator (the
    architecture page of the documentation): a sequence of file paths, or an
    ndarray of shape (n, H, W, C) or (n, H, W), uint8 in 0-255 or float in
    [0, 1], RGB channel order.

    Parameters
    ----------
    X : sequence of str / os.PathLike, or ndarray
        Images. A 3-D array is a batch of grayscale images (n, H, W), so
        its last axis must be longer than 4: an array of shape (H, W, 3) is
        refused as an unbatched colour image.
    size : int or (int, int) or None, default=None
        Resize every image to ``(H, W)`` (bilinear). Required when paths of
        different sizes are mixed.
    channels : {"keep", 1, 3}, default="keep"
        ``1`` converts to luminance, ``3`` repeats grayscale to RGB (alpha is
        always dropped). ``"keep"`` returns what the input has (a grayscale
        image gets a channel axis of length 1).
    dtype : numpy dtype, default=np.float32
        Output dtype; values are in [0, 1].

    Returns
    -------
    images : ndarray, shape (n, H, W, C), values in [0, 1]

    Raises
    ------
    ValueError
        Empty input, wrong number of dimensions, a single ``(H, W, 3)`` or
        ``(H, W, 4)`` image without its batch axis, values out of range, or
        images of different sizes without ``size``.
    FileNotFoundError
        A path that does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.datasets import load_images
    >>> load_images(np.zeros((2, 8, 8), np.uint8), channels=3).shape
    (2, 8, 8, 3)
    """
    if size is not None:
        size = check_size_pair(size)
    if is_path_sequence(X):
        mode = {"keep": "keep", 1: "L", 3: "RGB"}[channels]
        # One file at a time: decoded, converted and resized before the next one is
        # read, so memory follows the output size, not the files' native size.
        # Resized exactly as arrays are resized, so that paths and arrays agree.
        # Each image is written into its slot of the output: no list to stack.
        paths = list(X)
        out: np.ndarray | None = None
        first = None
        for i, p in enumerate(paths):
            image = read_image(p, mode=mode)
            if size is None:
                if first is None:
                    first = (image.shape[:2], os.fspath(p))
                elif image.shape[:2] != first[0]:
                    raise ValueError(
                        f"Images have different sizes: {first[0]} ({first[1]!r}) and "
                        f"{image.shape[:2]} ({os.fspath(p)!r}); pass size= to resize them."
                    )
            image = image.reshape(*image.shape[:2], -1)
            target = channels
            if out is not None and channels == "keep":
                if out.shape[-1] == 1 and image.shape[-1] > 1:  # colour after grayscale
                    out = np.repeat(out, 3, axis=-1)
                target = 3 if out.shape[-1] == 3 else "keep"  # grayscale is repeated to RGB
            with torch_threads(1, enabled=size is not None):
                if out is None:
                    converted = _convert_image(image, size, target, dtype)
                    out = np.empty((len(paths), *converted.shape), dtype=converted.dtype)
                    out[0] = converted
                else:
                    _convert_image(image, size, target, dtype, out=out[i])
            del image
        assert out is not None  # is_path_sequence: at least one path
        return out

    if isinstance(X, (str, os.PathLike)):
        raise ValueError(
            "Expected a sequence of image paths or an array of images, got a single path "
            f"{os.fspath(X)!r}; wrap it in a list."
        )
    if isinstance(X, (list, tuple)) and len(X) == 0:
        raise ValueError("Found an empty sequence of images; at least one image is required.")
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"Cannot convert input to an image array: {exc}") from exc
    if arr.dtype == object or arr.dtype.kind in ("U", "S"):
        raise ValueError(
            "Expected image paths (str / PathLike) or a numeric array of images; "
            f"got an array of dtype {arr.dtype}."
        )
    if arr.size == 0 or arr.shape[0] == 0:
        raise ValueError(f"Found an empty image array of shape {arr.shape}.")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise ValueError(
            f"Got an array of shape {arr.shape}: this reads as a single (H, W, C) image, "
            "not a batch. Pass images as (n, H, W, C), e.g. X[np.newaxis] for one colour "
            "image; (n, H, W) grayscale batches must be more than 4 pixels wide."
        )
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(
            "Expected images of shape (n, H, W) or (n, H, W, C), got an array with "
            f"{arr.ndim - (1 if np.asarray(X).ndim == 3 else 0)} dimensions and shape "
            f"{np.asarray(X).shape}."
        )
    if arr.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"Expected 1, 3 or 4 channels in the last axis, got shape {arr.shape}."
        )
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError("Integer images must be in 0-255.")
    elif arr.dtype.kind not in "iuf" and arr.dtype != bool:
        raise ValueError(f"Unsupported image dtype {arr.dtype}.")
    # Image by image, so that memory follows the output (not a float copy of the input).
    with torch_threads(1, enabled=size is not None):
        first_out = _convert_image(arr[0], size, channels, dtype)
        out = np.empty((len(arr), *first_out.shape), dtype=first_out.dtype)
        out[0] = first_out
        for i in range(1, len(arr)):
            out[i] = _convert_image(arr[i], size, channels, dtype)
    return out


_LUMA = (0.299, 0.587, 0.114)


def _convert_image(image, size, channels, dtype, out=None) -> np.ndarray:
    """One validated (H, W, C) image -> float (h, w, c) in [0, 1], converted and resized.

    Conversion to float and resizing go channel by channel, so that the
    largest temporary is one float plane of the input image. ``out``, an
    (h, w, c) array of ``dtype``, receives the result when given.
    """
    # Integer images are scaled by a scalar of the output type, so dtype must be callable here.
    scale = cast("Callable[[float], Any]", dtype)(255.0)

    def plane(c):
        raw = image[..., c]
        if raw.dtype.kind in "iu":
            return raw.astype(dtype) / scale
        values = raw.astype(dtype, copy=True)
        if not np.all(np.isfinite(values)):
            raise ValueError("Images contain NaN or infinite values.")
        if values.size and (values.min() < 0.0 or values.max() > 1.0):
            raise ValueError(
                "Float images must be in [0, 1] (uint8 images in 0-255); got values in "
                f"[{float(values.min()):.3g}, {float(values.max()):.3g}]."
            )
        return values

    n_in = min(image.shape[-1], 3)  # alpha is dropped
    gray = None
    if channels == 1 and n_in == 3:
        luma = np.asarray(_LUMA, dtype=np.dtype(dtype))
        gray = np.stack([plane(0), plane(1), plane(2)], axis=-1) @ luma
    n_src = 1 if gray is not None else n_in
    n_out = 3 if channels == 3 else n_src
    h, w = image.shape[:2] if size is None else size
    if out is None:
        out = np.empty((h, w, n_out), dtype=np.dtype(dtype))
    for c in range(n_src):
        values = gray if gray is not None else plane(c)
        if (h, w) != values.shape:
            values = _resize_plane(values, (h, w))
        out[..., c] = values
    if n_out > n_src:  # grayscale to RGB
        out[..., 1:] = out[..., :1]
    return out


def _resize_plane(plane: np.ndarray, size) -> np.ndarray:
    """Bilinear resize of one float (H, W) plane (antialiased, like PIL), in float32."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))[None, None]
    t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return t.clamp_(0.0, 1.0)[0, 0].numpy()
