"""Pseudo-defects pasted into normal images, with the recipes of the real-photo generator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import check_random_state

from ._io import check_image_input, load_images
from ._photos import _MARGIN, _PHOTO_SPECS, _cut_paste, _foreign_texture, _normal
from ._synthetic import _apply_defect, _Ctx, _scratch, _spot

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = ["PSEUDO_DEFECT_RECIPES", "pseudo_defects"]

#: The recipes of :func:`pseudo_defects`, in the order they take turns.
PSEUDO_DEFECT_RECIPES = ("foreign_texture", "cut_paste", "scratch", "stain")


#: Photographs whose crops fill the ``foreign_texture`` regions (DRAEM uses a texture dataset).
_FILLS = tuple(name for name, spec in _PHOTO_SPECS.items() if spec.kind == "texture")


def _recipes():
    def texture(rng, n):
        return _normal(rng, _FILLS[rng.integers(len(_FILLS))], n)

    return {
        "foreign_texture": (_foreign_texture(texture), True),
        "cut_paste": (_cut_paste(), True),
        "scratch": (_scratch(length=(0.15, 0.4), width=(1.5, 3.0), strength=(0.3, 0.5)), False),
        "stain": (_spot(radius=(0.04, 0.1), strength=(0.2, 0.35)), False),
    }


def pseudo_defects(
    images: Sequence[str | os.PathLike[str]] | ArrayLike,
    n_copies: int = 4,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.bool_], NDArray[np.str_]]:
    """Defective copies of normal images, drawn with the real-photo set's defect recipes.

    Each copy gets one defect; the recipes take turns, so that with
    ``n_copies=4`` every image gets each of them once:

    - ``"foreign_texture"``: a Perlin-noise region filled with a crop of one
      of scikit-image's texture photographs (those of the real-photo set's
      brick, grass, gravel, stars and tissue), as DRAEM fills it with a
      texture dataset;
    - ``"cut_paste"``: a rectangle cut elsewhere in the image, enlarged,
      turned, jittered in brightness and pasted back (CutPaste);
    - ``"scratch"``: a thin, curved, brighter or darker line;
    - ``"stain"``: a soft blob shifted in colour (RGB) or brightness (grey).

    Every mask covers 0.1-20 % of the image and keeps a 6 % margin from the
    border, as in :func:`make_mvtec_photos`. Non-square images are resized
    to a square of their shorter side (the maps of a square image are what
    a threshold is chosen on).

    Parameters
    ----------
    images : ndarray of shape (n, H, W[, C]) or sequence of paths
        Normal images, uint8 or float in [0, 1], at least 16 px.
    n_copies : int, default=4
        Defective copies made of each image.
    random_state : int, RandomState instance or None, default=None
        Seeds the recipes' shapes, places and colours.

    Returns
    -------
    defective : ndarray of float32, shape (n * n_copies, S, S, C)
        The copies, image by image (all copies of image 0 first).
    masks : ndarray of bool, shape (n * n_copies, S, S)
        Where each defect is.
    recipes : ndarray of str, shape (n * n_copies,)
        The recipe of each copy.

    Raises
    ------
    ValueError
        When ``n_copies < 1`` or a defect cannot be drawn (images too small).

    See Also
    --------
    make_mvtec_photos : The real-photo dataset whose recipes these are.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.datasets import pseudo_defects
    >>> normal = np.random.default_rng(0).uniform(size=(2, 64, 64, 3))
    >>> defective, masks, recipes = pseudo_defects(normal, random_state=0)
    >>> defective.shape, masks.shape, recipes.tolist()[:4]
    ((8, 64, 64, 3), (8, 64, 64), ['foreign_texture', 'cut_paste', 'scratch', 'stain'])
    """
    if isinstance(n_copies, (bool, np.bool_)) or not isinstance(n_copies, (int, np.integer)) \
            or n_copies < 1:
        raise ValueError(f"n_copies must be an integer >= 1, got {n_copies!r}.")
    paths, array = check_image_input(images)
    batch: list[str] | np.ndarray = paths if paths is not None else np.asarray(array)
    side = min(load_images(batch[:1]).shape[1:3])
    imgs = load_images(batch, size=(side, side))
    if side < 16:
        raise ValueError(f"pseudo_defects needs images of at least 16 px; got {side} px.")
    recipes = _recipes()
    region = np.zeros((side, side), bool)
    lo = int(round(_MARGIN * side))
    region[lo: side - lo, lo: side - lo] = True
    seed = check_random_state(random_state).randint(2**31 - 1)
    out, masks, names = [], [], []
    for i, img in enumerate(imgs):
        for k in range(n_copies):
            name = PSEUDO_DEFECT_RECIPES[(i * n_copies + k) % len(PSEUDO_DEFECT_RECIPES)]
            op, region_mask = recipes[name]
            ctx = _Ctx(side, img, {"fg": region}, {}, None)
            rng = np.random.default_rng([seed, i, k])
            defective, mask = _apply_defect(rng, op, ctx, name, "pseudo_defects",
                                            region_mask=region_mask)
            out.append(defective)
            masks.append(mask)
            names.append(name)
    return np.stack(out).astype(np.float32), np.stack(masks), np.asarray(names)
