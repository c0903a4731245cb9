"""A real-photo dataset in the exact MVTec AD layout, cut from scikit-image's bundled photographs.

Every category is one photograph that ships inside scikit-image (so it loads
offline). *Textures* (grass, gravel, brick, a star field, stained tissue) are
random crops of the photo with light flips, rotations and lighting jitter;
*objects* (a coffee cup, coins, a rocket, ...) are one fixed framing of the
photo with small shifts, rotations, zoom and lighting jitter.

Defects follow published recipes, each written with its exact mask:

* ``foreign_texture``: a Perlin-noise-shaped region filled with a crop of
  another photograph, blended with a random opacity (DRAEM, Zavrtanik et al.
  2021, and anomalib's synthetic anomalies);
* ``cut_paste``: a rectangle cut from elsewhere in the same image, turned,
  jittered in brightness and contrast and pasted back (CutPaste, Li et al.
  2021), enlarged 1.5-2x so that it also breaks the texture's scale;
* ``scratch``: a thin, curved, brighter or darker line;
* ``stain``: a soft blob shifted in colour (RGB) or brightness (1-channel).

Images are seeded like the rendered set's, from ``(random_state, category,
folder, index)``, and share its writer, lighting jitter, mask rules (masks
cover 0.1-20 % of the image) and the cap on how far a defect may move the
image mean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from sklearn.utils._param_validation import validate_params

from ._synthetic import (
    _apply_defect,
    _cached_root,
    _check_categories,
    _Ctx,
    _GENERATOR_PARAMS,
    _ROOT_PARAMETERS_DOC,
    _generator_seed,
    _image_rng,
    _lighting,
    _scratch,
    _spot,
    _write_dataset,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PHOTO_CATEGORIES",
    "PHOTO_GENERATOR_VERSION",
    "make_mvtec_photos",
    "photo_defect_types",
    "photos_root",
]

#: Bumped whenever the generated pixels change, so cached photo roots are rebuilt.
PHOTO_GENERATOR_VERSION = "1"

_MARGIN = 0.06  # defects start at least this far (image units) from the border


# ----------------------------------------------------------------------------- photos
@dataclass(frozen=True)
class _PhotoSpec:
    photo: str  # name of the loader in skimage.data
    kind: str  # "texture" or "object"
    side: float  # crop (texture) or frame (object) side, as a fraction of the photo's short side
    fill: str  # the category whose photo fills this category's foreign_texture defects
    centre: tuple = (0.5, 0.5)  # object frame centre (x, y) as fractions of the photo
    turn: bool = True  # textures: quarter turns allowed (not for oriented textures)


#: category -> how its normal images are cut from which photo.
_PHOTO_SPECS = {
    # textures
    "brick": _PhotoSpec("brick", "texture", 0.45, "grass", turn=False),
    "grass": _PhotoSpec("grass", "texture", 0.45, "brick"),
    "gravel": _PhotoSpec("gravel", "texture", 0.45, "tissue"),
    "stars": _PhotoSpec("hubble_deep_field", "texture", 0.35, "tissue"),
    "tissue": _PhotoSpec("immunohistochemistry", "texture", 0.45, "gravel"),
    # objects
    "astronaut": _PhotoSpec("astronaut", "object", 0.85, "gravel"),
    "cameraman": _PhotoSpec("camera", "object", 0.85, "tissue"),
    "coffee": _PhotoSpec("coffee", "object", 0.85, "brick"),
    "coins": _PhotoSpec("coins", "object", 0.85, "grass"),
    "page": _PhotoSpec("page", "object", 0.85, "gravel", centre=(0.3, 0.5)),
    "retina": _PhotoSpec("retina", "object", 0.85, "brick"),
    "rocket": _PhotoSpec("rocket", "object", 0.85, "gravel"),
}

#: Names of the real-photo categories, textures first.
PHOTO_CATEGORIES = tuple(_PHOTO_SPECS)


@lru_cache(maxsize=64)
def _photo(category, image_size):
    """The category's photo, uint8 (H, W) or (H, W, 3), scaled so a view is ~image_size px.

    Downscaling happens once here with a Lanczos filter, so that the per-image
    affine views below resample at about 1:1 and do not alias.
    """
    import skimage.data

    spec = _PHOTO_SPECS[category]
    img = Image.fromarray(getattr(skimage.data, spec.photo)())
    side = spec.side * min(img.size)
    scale = min(1.0, image_size / side)
    if scale < 1.0:
        img = img.resize(
            (round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS
        )
    out = np.asarray(img)
    out.setflags(write=False)
    return out


def _affine_view(photo, n, cx, cy, side, angle, mirror):
    """An ``n`` x ``n`` view of ``photo``: a ``side``-px square centred at (cx, cy), rotated.

    One bilinear resampling (PIL's affine transform) does crop, rotation, zoom
    and mirroring at once. Returns float32 (n, n, C) in [0, 1].
    """
    k = side / n
    c, s = np.cos(angle), np.sin(angle)
    f = -1.0 if mirror else 1.0
    a, b, d, e = k * c * f, -k * s, k * s * f, k * c
    o = 0.5 - n / 2.0  # output pixel centre relative to the view centre
    coeffs = (a, b, cx + (a + b) * o - 0.5, d, e, cy + (d + e) * o - 0.5)
    out = Image.fromarray(photo).transform(
        (n, n), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    arr = np.asarray(out, dtype=np.float32) / 255.0
    return arr[..., None] if arr.ndim == 2 else arr


def _texture_view(rng, photo, n, side, turn):
    """A random crop of a texture photo, mirrored and rotated at random."""
    h, w = photo.shape[:2]
    half = side * 0.75  # room for the rotated square's corners
    cx, cy = rng.uniform(half, w - half), rng.uniform(half, h - half)
    quarter = rng.integers(4) if turn else 2 * rng.integers(2)
    angle = quarter * np.pi / 2 + np.deg2rad(rng.uniform(-8, 8))
    return _affine_view(photo, n, cx, cy, side, angle, rng.random() < 0.5)


def _object_view(rng, photo, n, spec):
    """The object's fixed framing with a small shift, rotation and zoom."""
    h, w = photo.shape[:2]
    side = spec.side * min(h, w) * rng.uniform(0.97, 1.03)
    cx = spec.centre[0] * w + rng.uniform(-0.03, 0.03) * side
    cy = spec.centre[1] * h + rng.uniform(-0.03, 0.03) * side
    angle = np.deg2rad(rng.uniform(-3, 3))
    return _affine_view(photo, n, cx, cy, side, angle, False)


def _normal(rng, category, n):
    spec = _PHOTO_SPECS[category]
    photo = _photo(category, n)
    if spec.kind == "texture":
        return _texture_view(rng, photo, n, spec.side * min(photo.shape[:2]), spec.turn)
    return _object_view(rng, photo, n, spec)


def _as_channels(img, channels):
    if img.shape[-1] == channels:
        return img
    if channels == 1:
        return img.mean(axis=-1, keepdims=True)
    return np.repeat(img, channels, axis=-1)


# ----------------------------------------------------------------------------- defects
def _perlin_noise(rng, n, res):
    """Gradient (Perlin) noise on an ``n`` x ``n`` grid with ``res`` = (rows, cols) periods.

    Random unit gradients on a ``(res + 1)`` lattice, dot products with the
    offsets to the four cell corners, blended with Perlin's quintic fade
    ``6t^5 - 15t^4 + 10t^3``. Values lie in about [-0.7, 0.7].
    """
    ry, rx = res
    y = (np.arange(n, dtype=np.float32) + 0.5) / n * ry
    x = (np.arange(n, dtype=np.float32) + 0.5) / n * rx
    yi, xi = np.floor(y).astype(int), np.floor(x).astype(int)
    yf, xf = (y - yi)[:, None], (x - xi)[None, :]
    theta = rng.uniform(0, 2 * np.pi, size=(ry + 1, rx + 1)).astype(np.float32)
    gy, gx = np.sin(theta), np.cos(theta)

    def corner(dy, dx):
        iy, ix = (yi + dy)[:, None], (xi + dx)[None, :]
        return gy[iy, ix] * (yf - dy) + gx[iy, ix] * (xf - dx)

    def fade(t):
        return t * t * t * (t * (t * 6 - 15) + 10)

    u, v = fade(xf), fade(yf)
    top = corner(0, 0) + u * (corner(0, 1) - corner(0, 0))
    bottom = corner(1, 0) + u * (corner(1, 1) - corner(1, 0))
    return top + v * (bottom - top)


def _foreign_texture(fill, coverage=(0.01, 0.08), opacity=(0.6, 1.0)):
    """DRAEM's anomaly: a thresholded Perlin-noise region filled with another image.

    ``fill(rng, n)`` returns the filling image, float (n, n, C) in [0, 1].
    """

    def op(rng, c):
        res = tuple(int(2 ** rng.integers(1, 3)) for _ in range(2))
        noise = _perlin_noise(rng, c.n, res)
        frac = rng.uniform(*coverage)
        mask = (noise > np.quantile(noise, 1 - frac)) & c.region("fg")
        source = _as_channels(fill(rng, c.n), c.channels)
        beta = np.float32(rng.uniform(*opacity))
        pasted = c.img * (1 - beta) + source * beta
        return np.where(mask[..., None], pasted, c.img), mask

    return op


def _cut_paste(area=(0.01, 0.06), aspect=(0.3, 3.3), zoom=(1.5, 2.0)):
    """CutPaste: a rectangle cut elsewhere in the image, zoomed, turned, jittered and pasted.

    Besides CutPaste's turn and brightness/contrast jitter, the cut is
    enlarged, so that on textures (whose normal images are turned too) the
    paste differs in scale and not only in its seams.
    """

    def op(rng, c):
        n = c.n
        ratio = np.exp(rng.uniform(*np.log(aspect)))
        a = rng.uniform(*area) * n * n
        ph = int(np.clip(round(np.sqrt(a / ratio)), 4, n // 2))
        pw = int(np.clip(round(np.sqrt(a * ratio)), 4, n // 2))
        z = rng.uniform(*zoom)
        ch, cw = max(2, round(ph / z)), max(2, round(pw / z))
        y0, x0 = rng.integers(0, n - ch + 1), rng.integers(0, n - cw + 1)
        cut = c.img[y0 : y0 + ch, x0 : x0 + cw]
        rows = np.minimum((np.arange(ph) + 0.5) * ch / ph, ch - 1).astype(int)
        cols = np.minimum((np.arange(pw) + 0.5) * cw / pw, cw - 1).astype(int)
        patch = np.rot90(cut[rows][:, cols], rng.integers(4))
        gain = np.float32(rng.uniform(0.7, 1.3))
        patch = (patch - patch.mean()) * gain + patch.mean() + np.float32(rng.uniform(-0.1, 0.1))
        ph, pw = patch.shape[:2]
        lo = int(_MARGIN * n)
        y1 = rng.integers(lo, max(lo + 1, n - lo - ph))
        x1 = rng.integers(lo, max(lo + 1, n - lo - pw))
        out = c.img.copy()
        out[y1 : y1 + ph, x1 : x1 + pw] = patch[: n - y1, : n - x1]
        mask = np.zeros((n, n), bool)
        mask[y1 : y1 + ph, x1 : x1 + pw] = True
        return out, mask & c.region("fg")

    return op


def _defects(category):
    fill = _PHOTO_SPECS[category].fill
    return {
        "cut_paste": (_cut_paste(), True),
        "foreign_texture": (_foreign_texture(lambda rng, n: _normal(rng, fill, n)), True),
        "scratch": (_scratch(length=(0.15, 0.4), width=(1.5, 3.0), strength=(0.3, 0.5)), False),
        "stain": (_spot(radius=(0.04, 0.1), strength=(0.2, 0.35)), False),
    }


# ----------------------------------------------------------------------------- writer
def _render_photo(category, folder, index, size, random_state):
    """One image (uint8, (H, W) or (H, W, 3)) and its mask (bool or None)."""
    rng = _image_rng(random_state, category, folder, index)
    img = _normal(rng, category, size)
    mask = None
    if folder not in ("train/good", "test/good"):
        defect = folder.split("/", 1)[1]
        op, region_mask = _defects(category)[defect]
        region = np.zeros((size, size), bool)
        lo = int(round(_MARGIN * size))
        region[lo : size - lo, lo : size - lo] = True
        ctx = _Ctx(size, img, {"fg": region}, {}, None)
        img, mask = _apply_defect(rng, op, ctx, defect, category, region_mask=region_mask)
    out = np.round(_lighting(rng, img) * 255).astype(np.uint8)
    return (out[..., 0] if out.shape[-1] == 1 else out), mask


def _check_photo_categories(categories):
    return _check_categories(categories, _PHOTO_SPECS, "photo")


def photo_defect_types(category: str) -> list[str]:
    """The defect types the real-photo generator draws for ``category``.

    Parameters
    ----------
    category : str
        One of :data:`PHOTO_CATEGORIES`.

    Returns
    -------
    defect_types : list of str
        Sorted defect-type names (test folder names).

    Examples
    --------
    >>> from mvtec_sklearn.datasets import photo_defect_types
    >>> photo_defect_types("coffee")
    ['cut_paste', 'foreign_texture', 'scratch', 'stain']
    """
    return sorted(_defects(_check_photo_categories([category])[0]))


@validate_params(_GENERATOR_PARAMS, prefer_skip_nested_validation=True)
def make_mvtec_photos(
    root: str | os.PathLike[str],
    categories: str | Sequence[str] | None = None,
    n_train: int = 60,
    n_test_good: int = 20,
    n_test_defect: int = 60,
    image_size: int = 256,
    random_state: int | None = 0,
    overwrite: bool = False,
) -> str:
    """Write an MVTec AD-format dataset cut from real photographs.

    Each category is one photograph bundled with scikit-image (so nothing is
    downloaded): five textures (``grass``, ``gravel`` and ``brick``, 1-channel;
    ``stars``, a Hubble deep field, and ``tissue``, an immunohistochemistry
    slide, RGB) whose normal images are random crops with flips, rotations and
    lighting jitter, and seven objects (``cameraman``, ``coins`` and ``page``,
    1-channel; ``astronaut``, ``coffee``, ``retina`` and ``rocket``, RGB)
    whose normal images are one fixed framing with small shifts (3 %),
    rotations (3 degrees), zoom and lighting jitter.

    Every category has four defect types, each written with its exact mask
    (0.1-20 % of the image): ``foreign_texture`` (a Perlin-noise-shaped region
    filled with a crop of another photograph, as in DRAEM), ``cut_paste`` (a
    rectangle from the same image, enlarged, turned and jittered, as in
    CutPaste), ``scratch`` (a thin curved line) and ``stain`` (a soft blob
    shifted in colour or brightness). A defect moves the image mean by at most 0.01 (0-1 scale).

    The layout is ``root/<category>/train/good/000.png``,
    ``test/good/000.png``, ``test/<defect>/000.png`` and
    ``ground_truth/<defect>/000_mask.png``, as :func:`make_mvtec_like` writes
    and :func:`load_mvtec` reads.

    Parameters
    ----------
    root : str or os.PathLike
        Output folder (created if needed).
    categories : str or list of str or None, default=None
        Categories to write; ``None`` writes all of :data:`PHOTO_CATEGORIES`.
    n_train : int, default=60
        Good training images per category (at least 1).
    n_test_good : int, default=20
        Good test images per category (no ``test/good`` folder when 0).
    n_test_defect : int, default=60
        Defective test images per category, spread as evenly as possible over
        the four defect types.
    image_size : int, default=256
        Side length of every (square) image, at least 32.
    random_state : int or None, default=0
        Seed. Every image is seeded from ``(random_state, category, folder,
        index)``, so a category's images do not depend on which other
        categories are generated. ``None`` draws a fresh seed.
    overwrite : bool, default=False
        Replace category folders that already exist under ``root``; otherwise
        an existing category folder raises :class:`FileExistsError`.

    Returns
    -------
    root : str
        The output folder.

    See Also
    --------
    make_mvtec_like : The rendered (synthetic) miniature of MVTec AD's 15 categories.
    photos_root : Generate this dataset once and reuse it.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.datasets import load_mvtec, make_mvtec_photos
    >>> root = make_mvtec_photos(tempfile.mkdtemp(), categories=["coffee"], n_train=2,
    ...                          n_test_good=1, n_test_defect=4, image_size=64)
    >>> test = load_mvtec(root, "coffee", split="test")
    >>> test.target.tolist(), sorted(set(test.defect_type))
    ([0, 1, 1, 1, 1], ['cut_paste', 'foreign_texture', 'good', 'scratch', 'stain'])
    """
    categories = _check_photo_categories(categories)
    random_state = _generator_seed(random_state)

    def render(category, folder, index):
        return _render_photo(category, folder, index, image_size, random_state)

    counts = (n_train, n_test_good, n_test_defect)
    return _write_dataset(root, categories, overwrite, counts, photo_defect_types, render)


def photos_root(data_home: str | os.PathLike[str] | None = None, **make_kwargs: Any) -> str:
    """Generate the real-photo dataset once and return its folder (reused afterwards).

    Works like :func:`synthetic_root`: the folder, ``photos-<hash>`` under
    ``data_home``, is keyed on ``make_kwargs`` and
    :data:`PHOTO_GENERATOR_VERSION`, and is written into a temporary folder
    renamed into place when complete.

    {parameters}

    Examples
    --------
    The folder also holds ``settings.json``, the arguments it was made with:

    >>> import json, os, tempfile
    >>> from mvtec_sklearn.datasets import photos_root
    >>> root = photos_root(tempfile.mkdtemp(), categories=["coins"], n_train=2,
    ...                    n_test_good=1, n_test_defect=2, image_size=32)
    >>> os.path.basename(root).startswith("photos-"), sorted(os.listdir(root))
    (True, ['coins', 'settings.json'])
    >>> with open(os.path.join(root, "settings.json")) as fh:
    ...     json.load(fh)["categories"]
    ['coins']
    """
    return _cached_root(
        "photos",
        make_mvtec_photos,
        PHOTO_GENERATOR_VERSION,
        _check_photo_categories,
        data_home,
        make_kwargs,
    )


photos_root.__doc__ = (photos_root.__doc__ or "").replace(
    "{parameters}", _ROOT_PARAMETERS_DOC.format(make="make_mvtec_photos")
)
