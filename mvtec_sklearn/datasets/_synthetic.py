"""A synthetic dataset in the exact MVTec AD layout: a fair miniature of the 15 categories.

Every category has its own renderer of normal images (textures: periodic weaves,
wire grids, stone, wood and leather noise, a zipper; objects: a shape with pose,
position and lighting jitter on a background) and several defect types, small and
large (scratch, crack, cut, hole, colour spot, contamination, missing, bent or
misplaced parts, ...), each written with its exact ground-truth mask.

Design rules the tests check:

* every image is seeded from ``(random_state, category, folder, index)``, so a
  category's files do not depend on which other categories are generated;
* defect masks cover between 0.1 % and 20 % of the image;
* the mean intensity of an image does not separate any defect type from the good
  images (per-image lighting jitter is larger than the mean shift a defect may
  cause, which is capped), so a detector has to look at local structure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from sklearn.utils._param_validation import Interval, validate_params

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["GENERATOR_VERSION", "make_mvtec_like", "synthetic_defect_types", "synthetic_root"]

#: Bumped whenever the generated pixels change, so cached synthetic roots are rebuilt.
GENERATOR_VERSION = "1"

_MIN_COVERAGE = 0.001
_MAX_COVERAGE = 0.20
_MEAN_SHIFT_CAP = 0.010  # largest change of the image mean a defect may cause (0-1 scale)
_CHANGED = 4.0 / 255.0  # a pixel belongs to the mask when the defect changed it this much
_TWO_PI = 2.0 * np.pi


# ----------------------------------------------------------------------------- helpers
@lru_cache(maxsize=32)
def _coords(n):
    """Pixel-centre coordinates in image units (0-1): ``xx`` along columns, ``yy`` rows."""
    c = (np.arange(n, dtype=np.float32) + 0.5) / n
    xx, yy = np.meshgrid(c, c)
    xx.setflags(write=False)
    yy.setflags(write=False)
    return xx, yy


@lru_cache(maxsize=32)
def _freq2(n):
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    return (fx**2 + fy**2).astype(np.float32)


def _noise(rng, n, sigma_px):
    """Periodic Gaussian-filtered white noise with unit standard deviation."""
    a = rng.standard_normal((n, n), dtype=np.float32)
    if sigma_px > 0.3:
        f = np.fft.rfft2(a) * np.exp(-2.0 * np.pi**2 * sigma_px**2 * _freq2(n))
        a = np.fft.irfft2(f, s=(n, n)).astype(np.float32)
    return a / (a.std() + 1e-6)


def _rotate(dx, dy, angle):
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return dx * c + dy * s, -dx * s + dy * c


def _local(n, cx, cy, angle):
    """Object-frame coordinates (u along the object's axis) around ``(cx, cy)``."""
    xx, yy = _coords(n)
    return _rotate(xx - np.float32(cx), yy - np.float32(cy), angle)


def _to_image(pts, p):
    """Object-frame points (u, v) to image coordinates for an object at ``p``'s pose."""
    c, s = np.cos(p["angle"]), np.sin(p["angle"])
    return np.asarray(pts) @ np.array([[c, s], [-s, c]]) + [p["cx"], p["cy"]]


def _aa(sd, n):
    """Anti-aliased coverage from a signed distance (image units, negative inside)."""
    return np.clip(0.5 - sd * n, 0.0, 1.0).astype(np.float32)


def _ellipse_sd(u, v, a, b):
    q = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return (q - 1.0) * min(a, b)


def _box_sd(u, v, a, b, r=0.0):
    dx, dy = np.abs(u) - (a - r), np.abs(v) - (b - r)
    outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
    return outside + np.minimum(np.maximum(dx, dy), 0) - r


def _seg_dist(n, pts):
    """Distance in pixels from every pixel centre to the polyline ``pts`` (image units)."""
    xx, yy = _coords(n)
    d = np.full((n, n), np.inf, dtype=np.float32)
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy + 1e-12), 0, 1)
        d = np.minimum(d, np.hypot(xx - x0 - t * dx, yy - y0 - t * dy))
    return d * n


def _blend(img, alpha, colour):
    a = alpha[..., None]
    return img * (1 - a) + np.asarray(colour, np.float32) * a


def _col(*c):
    return np.asarray(c, dtype=np.float32)


def _tinted(val, colour, tint):
    """A texture filling the frame: grey levels ``val`` times ``colour`` shifted by ``tint``."""
    return val[..., None] * (colour + tint.astype(np.float32)), {"fg": np.ones(val.shape, bool)}


def _sign(rng):
    return 1.0 if rng.random() < 0.5 else -1.0


def _pick(rng, region, n):
    """A random pixel centre (image units) inside ``region``."""
    ys, xs = np.nonzero(region)
    i = rng.integers(len(ys))
    return (xs[i] + 0.5) / n, (ys[i] + 0.5) / n


def _blob(rng, n, cx, cy, r, aspect=1.0, irregular=0.3):
    """Irregular blob: bool mask and normalised radius (0 at centre, 1 at the border)."""
    xx, yy = _coords(n)
    u, v = _rotate(xx - np.float32(cx), yy - np.float32(cy), rng.uniform(0, np.pi))
    v = v * np.float32(aspect)
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    radius = np.full_like(rho, r)
    for k in (2, 3, 5):
        radius += np.float32(r * rng.uniform(0, irregular * 2.0 / k)) * np.cos(
            k * phi + np.float32(rng.uniform(0, _TWO_PI))
        )
    radius = np.maximum(radius, 0.3 * r)
    t = rho / radius
    return t <= 1.0, t


def _walk(rng, x, y, length, steps, turn):
    """Random-walk polyline starting at ``(x, y)``."""
    angle = rng.uniform(0, _TWO_PI)
    pts = [(x, y)]
    for _ in range(steps):
        angle += rng.normal(0, turn)
        x += length / steps * np.cos(angle)
        y += length / steps * np.sin(angle)
        pts.append((x, y))
    return np.asarray(pts, dtype=np.float32)


def _chroma(rng, channels):
    """A random colour direction orthogonal to grey (RGB) or a random sign (grey)."""
    if channels == 1:
        return _col(_sign(rng))
    g = rng.normal(size=3)
    g -= g.mean()
    return (g / (np.linalg.norm(g) + 1e-9) * np.sqrt(3.0)).astype(np.float32)


# ----------------------------------------------------------------------------- defects
@dataclass
class _Ctx:
    """What a defect operation sees: the normal image, its regions and how it was drawn."""

    n: int
    img: np.ndarray
    regions: dict
    params: dict
    draw: object
    channels: int = field(init=False)

    def __post_init__(self):
        self.channels = self.img.shape[-1]

    def region(self, name):
        return self.regions[name]


def _scratch(region="fg", length=(0.12, 0.35), width=(0.8, 1.8), strength=(0.25, 0.45), turn=0.25):
    """A thin, slightly curved line that is brighter or darker than its surroundings."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        d = _seg_dist(c.n, _walk(rng, x, y, rng.uniform(*length), 6, turn))
        half = max(rng.uniform(*width) / 2, 0.6)
        mask = (d <= half) & c.region(region)
        alpha = np.where(mask, 1 - 0.4 * (d / half) ** 2, 0).astype(np.float32)
        delta = _sign(rng) * rng.uniform(*strength)
        return c.img + alpha[..., None] * np.float32(delta), mask

    return op


def _crack(region="fg", length=(0.1, 0.3), width=(0.8, 1.6), branch=True):
    """A jagged dark line, optionally branched."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        pts = _walk(rng, x, y, rng.uniform(*length), 10, 0.7)
        d = _seg_dist(c.n, pts)
        if branch and rng.random() < 0.6:
            bx, by = pts[rng.integers(2, len(pts) - 2)]
            d = np.minimum(d, _seg_dist(c.n, _walk(rng, bx, by, rng.uniform(*length) / 2, 5, 0.7)))
        half = max(rng.uniform(*width) / 2, 0.6)
        mask = (d <= half) & c.region(region)
        dark = np.float32(rng.uniform(0.45, 0.75))
        alpha = np.where(mask, 1 - 0.5 * (d / half) ** 2, 0).astype(np.float32)
        return c.img * (1 - dark * alpha[..., None]), mask

    return op


def _cut(region="fg", length=(0.08, 0.25), width=(1.6, 3.2)):
    """A straight gash: dark core with a bright lip on one side."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        pts = _walk(rng, x, y, rng.uniform(*length), 2, 0.15)
        d = _seg_dist(c.n, pts)
        half = rng.uniform(*width) / 2
        mask = (d <= half + 1.0) & c.region(region)
        core = np.clip(1 - d / half, 0, 1)
        lip = np.where(mask & (d > half * 0.6), 1.0, 0.0).astype(np.float32)
        out = c.img * (1 - 0.7 * core[..., None]) + 0.18 * lip[..., None] * _sign(rng)
        return out, mask

    return op


def _hole(region="fg", radius=(0.015, 0.045), colour=None):
    """A small round hole: dark inside with a lighter rim."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        r = max(rng.uniform(*radius), 1.2 / c.n)
        mask, t = _blob(rng, c.n, x, y, r, irregular=0.15)
        mask &= c.region(region)
        inner = _col(*([rng.uniform(0.03, 0.15)] * c.channels)) if colour is None else colour
        rim = np.clip((t - 0.65) / 0.35, 0, 1)
        fill = inner + rim[..., None] * np.float32(rng.uniform(0.15, 0.35))
        out = np.where(mask[..., None], fill, c.img)
        return out, mask

    return op


def _spot(region="fg", radius=(0.03, 0.1), strength=(0.15, 0.3), aspect=(1.0, 2.0)):
    """A colour stain: a chroma shift (RGB) or an intensity shift (grey) in a soft blob."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        mask, t = _blob(rng, c.n, x, y, rng.uniform(*radius), aspect=rng.uniform(*aspect))
        mask &= c.region(region)
        alpha = np.where(mask, 0.5 + 0.5 * np.clip(1 - t, 0, 1), 0).astype(np.float32)
        delta = _chroma(rng, c.channels) * np.float32(rng.uniform(*strength))
        return c.img + alpha[..., None] * delta, mask

    return op


def _contamination(region="fg", radius=(0.015, 0.05), bright=None):
    """A foreign particle: a blob of different colour and grainy texture."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        mask, t = _blob(
            rng, c.n, x, y, rng.uniform(*radius), aspect=rng.uniform(1, 2.5), irregular=0.5
        )
        mask &= c.region(region)
        if bright is None:
            base = rng.uniform(0.05, 0.95, size=c.channels)
        else:
            base = (
                rng.uniform(0.7, 0.95, size=c.channels)
                if bright
                else rng.uniform(0.02, 0.2, size=c.channels)
            )
        grain = 1 + 0.35 * _noise(rng, c.n, 0.8)
        fill = np.clip(base.astype(np.float32) * grain[..., None], 0, 1)
        alpha = np.where(mask, 0.9, 0).astype(np.float32)[..., None]
        return c.img * (1 - alpha) + fill * alpha, mask

    return op


def _translucent(
    region="fg", radius=(0.05, 0.13), aspect=(1.0, 3.0), colour=None, opacity=(0.3, 0.55)
):
    """A glue, oil or liquid film: a smooth blob that tints what lies below."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        mask, t = _blob(
            rng, c.n, x, y, rng.uniform(*radius), aspect=rng.uniform(*aspect), irregular=0.4
        )
        mask &= c.region(region)
        col = (
            rng.uniform(0.05, 0.95, size=c.channels)
            if colour is None
            else np.asarray(colour)[: c.channels]
        )
        a = np.float32(rng.uniform(*opacity))
        alpha = np.where(mask, a * (0.6 + 0.4 * np.clip(1 - t, 0, 1) ** 0.5), 0).astype(np.float32)
        return _blend(c.img, alpha, col.astype(np.float32)), mask

    return op


def _rough(region="fg", radius=(0.06, 0.14), strength=(0.12, 0.22)):
    """A rough patch: zero-mean grainy texture added in a blob."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        mask, t = _blob(
            rng, c.n, x, y, rng.uniform(*radius), aspect=rng.uniform(1, 2), irregular=0.4
        )
        mask &= c.region(region)
        grain = _noise(rng, c.n, rng.uniform(0.5, 1.2)) * np.float32(rng.uniform(*strength))
        alpha = np.where(mask, 0.6 + 0.4 * np.clip(1 - t, 0, 1), 0).astype(np.float32)
        return c.img + (alpha * grain)[..., None], mask

    return op


def _warp(region="fg", radius=(0.06, 0.14), amplitude=(2.0, 4.0), shade=0.0):
    """Bent or folded material: pixels displaced (and optionally shaded) in a blob."""
    from scipy import ndimage

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        blob, t = _blob(
            rng, c.n, x, y, rng.uniform(*radius), aspect=rng.uniform(1, 2.5), irregular=0.3
        )
        bump = np.where(blob, (1 - np.clip(t, 0, 1) ** 2) ** 2, 0).astype(np.float32)
        amp = rng.uniform(*amplitude)
        ang = rng.uniform(0, _TWO_PI)
        rows, cols = np.mgrid[0 : c.n, 0 : c.n].astype(np.float32)
        rows -= amp * bump * np.float32(np.sin(ang))
        cols -= amp * bump * np.float32(np.cos(ang))
        out = np.stack(
            [
                ndimage.map_coordinates(c.img[..., k], [rows, cols], order=1, mode="reflect")
                for k in range(c.channels)
            ],
            axis=-1,
        )
        if shade:
            out = out * (1 + np.float32(shade * _sign(rng)) * bump[..., None])
        return out, blob & c.region(region)

    return op


def _thread(region="fg", length=(0.2, 0.45), width=(0.8, 1.3)):
    """A loose fibre: a long smooth curve of another colour lying on the surface."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        d = _seg_dist(c.n, _walk(rng, x, y, rng.uniform(*length), 12, 0.35))
        half = max(rng.uniform(*width) / 2, 0.6)
        mask = (d <= half) & c.region(region)
        col = rng.uniform(0.0, 1.0, size=c.channels).astype(np.float32)
        alpha = np.where(mask, 0.85, 0).astype(np.float32)
        return _blend(c.img, alpha, col), mask

    return op


def _imprint(region="fg", size=(0.04, 0.08), width=(0.8, 1.4)):
    """Printed marks: a few short strokes of ink."""

    def op(rng, c):
        x, y = _pick(rng, c.region(region), c.n)
        s = rng.uniform(*size)
        d = np.full((c.n, c.n), np.inf, np.float32)
        for _ in range(rng.integers(2, 5)):
            x0, y0 = x + rng.uniform(-s, s), y + rng.uniform(-s, s)
            d = np.minimum(d, _seg_dist(c.n, _walk(rng, x0, y0, s, 2, 0.8)))
        mask = (d <= max(rng.uniform(*width) / 2, 0.6)) & c.region(region)
        ink = rng.uniform(0.0, 0.6, size=c.channels).astype(np.float32)
        return _blend(c.img, np.where(mask, 0.9, 0).astype(np.float32), ink), mask

    return op


def _variant(modify):
    """A structural defect: the object redrawn with modified parameters (missing, bent, ...)."""

    def op(rng, c):
        params = modify(rng, dict(c.params))
        new, _ = c.draw(c.n, params)
        mask = np.abs(new - c.img).max(axis=-1) > _CHANGED
        return np.where(mask[..., None], new, c.img), mask

    return op


def _combined(*ops):
    """Several defects in one image (MVTec's ``combined``)."""

    def op(rng, c):
        img, mask = c.img, np.zeros((c.n, c.n), bool)
        for sub in ops:
            img, m = sub(rng, _Ctx(c.n, img, c.regions, c.params, c.draw))
            mask |= m
        return img, mask

    return op


def _apply_defect(rng, op, ctx, name, category, region_mask=False):
    """Draw one defect whose mask covers 0.1-20 % of the image and barely moves the mean.

    The mask is the set of pixels the defect changed by more than ``_CHANGED``.
    With ``region_mask=True`` (pastes of whole regions) it is the region ``op``
    returns, and most of that region must have changed.
    """
    base_mean = float(ctx.img.mean())
    npx = ctx.n * ctx.n

    def final_mask(out, mask):
        changed = np.abs(out - ctx.img).max(axis=-1) > _CHANGED
        if not region_mask:
            return mask & changed
        return mask if changed[mask].mean() >= 0.5 else np.zeros_like(mask)

    for _ in range(60):
        out, mask = op(rng, ctx)
        out = np.clip(out, 0, 1).astype(np.float32)
        mask = final_mask(out, mask)
        frac = mask.mean()
        if not (_MIN_COVERAGE <= frac <= _MAX_COVERAGE) or mask.sum() < 2:
            continue
        # Cap the change of the mean: shift the defect pixels only.
        for _ in range(3):
            shift = float(out.mean()) - base_mean
            if abs(shift) <= _MEAN_SHIFT_CAP:
                break
            excess = shift - np.sign(shift) * _MEAN_SHIFT_CAP * 0.9
            out[mask] = np.clip(out[mask] - np.float32(excess * npx / mask.sum()), 0, 1)
        if abs(float(out.mean()) - base_mean) > _MEAN_SHIFT_CAP * 1.5:
            continue
        out = np.where(mask[..., None], out, ctx.img)
        mask = final_mask(out, mask)
        if _MIN_COVERAGE <= mask.mean() <= _MAX_COVERAGE and mask.sum() >= 2:
            return out, mask
    raise ValueError(
        f"Could not draw a {category!r}/{name!r} defect covering {_MIN_COVERAGE:.1%}-"
        f"{_MAX_COVERAGE:.0%} of a {ctx.n}x{ctx.n} image; use a larger image_size."
    )


def _lighting(rng, img):
    """Per-image lighting jitter (gain, offset, gentle gradient) and sensor noise."""
    n = img.shape[0]
    xx, yy = _coords(n)
    ang = rng.uniform(0, _TWO_PI)
    ramp = (xx - 0.5) * np.float32(np.cos(ang)) + (yy - 0.5) * np.float32(np.sin(ang))
    gain = rng.uniform(0.86, 1.14) * (1 + rng.uniform(0, 0.08) * ramp)
    out = img * gain[..., None] + np.float32(rng.uniform(-0.03, 0.03))
    out = out + rng.normal(0, 0.008, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 1)


# ----------------------------------------------------------------------------- textures
def _seed(rng):
    return int(rng.integers(2**31 - 1))


def _carpet_sample(rng):
    return {
        "seed": _seed(rng),
        "period": rng.uniform(0.085, 0.1),
        "phase": rng.uniform(0, 1, 2),
        "angle": rng.normal(0, 0.03),
        "tint": rng.normal(0, 0.02, 3),
    }


def _carpet_draw(n, p):
    r = np.random.default_rng(p["seed"])
    xx, yy = _coords(n)
    u, v = _rotate(xx, yy, p["angle"])
    gu, gv = u / p["period"] + p["phase"][0], v / p["period"] + p["phase"][1]
    cell = (np.floor(gu) + np.floor(gv)) % 2
    weave = np.where(cell == 0, np.abs(np.sin(np.pi * 2 * gv)), np.abs(np.sin(np.pi * 2 * gu)))
    val = 0.3 + 0.3 * weave + 0.06 * _noise(r, n, 0.6) + 0.04 * _noise(r, n, n * 0.06)
    return _tinted(val, _col(1.0, 0.93, 0.84), p["tint"])


def _grid_sample(rng):
    return {
        "seed": _seed(rng),
        "period": rng.uniform(0.1, 0.12),
        "phase": rng.uniform(0, 1, 2),
        "angle": rng.normal(0, 0.04),
        "wave": rng.uniform(0.08, 0.14),
        "erase": None,
    }


def _grid_draw(n, p):
    r = np.random.default_rng(p["seed"])
    xx, yy = _coords(n)
    u, v = _rotate(xx, yy, p["angle"])
    P = p["period"]
    gu, gv = u / P + p["phase"][0], v / P + p["phase"][1]
    du = np.abs((gu + p["wave"] * np.sin(_TWO_PI * gv)) % 1.0 - 0.5)
    dv = np.abs((gv + p["wave"] * np.sin(_TWO_PI * gu)) % 1.0 - 0.5)
    w = 0.13
    wire_u = np.exp(-(((0.5 - du) / w) ** 2)) * (0.85 + 0.15 * np.sin(_TWO_PI * gv))
    wire_v = np.exp(-(((0.5 - dv) / w) ** 2)) * (0.85 + 0.15 * np.sin(_TWO_PI * gu))
    wires = np.maximum(wire_u, wire_v) * (1 + 0.08 * _noise(r, n, 0.7))
    if p["erase"] is not None:
        cx, cy, rad = p["erase"]
        wires = wires * (np.hypot(xx - cx, yy - cy) > rad)
    bg = 0.16 + 0.04 * _noise(r, n, n * 0.1) + 0.02 * _noise(r, n, 0.6)
    return (bg + 0.55 * wires)[..., None], {"fg": np.ones((n, n), bool)}


def _grid_broken(rng, p):
    p["erase"] = (rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.03, 0.06))
    return p


def _leather_sample(rng):
    return {"seed": _seed(rng), "tint": rng.normal(0, 0.02, 3)}


def _leather_draw(n, p):
    r = np.random.default_rng(p["seed"])
    creases = np.exp(-((_noise(r, n, n * 0.035) / 0.22) ** 2))
    val = 0.56 - 0.17 * creases + 0.04 * _noise(r, n, n * 0.012) + 0.03 * _noise(r, n, 0.7)
    val = val + 0.03 * _noise(r, n, n * 0.2)
    return _tinted(val, _col(1.0, 0.66, 0.44), p["tint"])


def _tile_sample(rng):
    return {"seed": _seed(rng), "tint": rng.normal(0, 0.015, 3)}


def _tile_draw(n, p):
    r = np.random.default_rng(p["seed"])
    spots = np.clip((_noise(r, n, n * 0.035) + 0.45 * _noise(r, n, n * 0.012) - 1.0) * 2.5, 0, 1)
    base = 0.74 + 0.03 * _noise(r, n, n * 0.2) + 0.025 * _noise(r, n, 0.7)
    val = base - 0.42 * spots
    return _tinted(val, _col(0.98, 0.99, 1.03), p["tint"])


def _wood_sample(rng):
    return {
        "seed": _seed(rng),
        "freq": rng.uniform(6.0, 9.0),
        "angle": rng.normal(0, 0.05),
        "phase": rng.uniform(0, 1),
        "tint": rng.normal(0, 0.02, 3),
    }


def _wood_draw(n, p):
    r = np.random.default_rng(p["seed"])
    xx, yy = _coords(n)
    u, _ = _rotate(xx, yy, p["angle"])
    warp = 0.35 * _noise(r, n, n * 0.12) + 0.08 * _noise(r, n, n * 0.03)
    g = np.sin(_TWO_PI * (p["freq"] * u + warp + p["phase"]))
    grain = np.clip((g - 0.3) / 0.7, 0, 1) ** 1.5
    streak = _noise(r, n, 0.7)
    streak = (
        0.5 * (streak + np.roll(streak, 1, 0) + np.roll(streak, 2, 0) + np.roll(streak, -1, 0)) / 2
    )
    val = 0.66 - 0.24 * grain + 0.03 * streak + 0.03 * _noise(r, n, n * 0.1)
    return _tinted(val, _col(1.0, 0.74, 0.5), p["tint"])


def _zipper_sample(rng):
    return {
        "seed": _seed(rng),
        "cx": rng.uniform(0.47, 0.53),
        "width": rng.uniform(0.24, 0.27),
        "period": rng.uniform(0.075, 0.085),
        "phase": rng.uniform(0, 1),
        "angle": rng.normal(0, 0.01),
        "remove": (),
        "split": (),
        "squeeze": (),
    }


def _zipper_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], 0.5, p["angle"])
    W, P = p["width"], p["period"]
    weave = np.abs(np.sin(np.pi * u * n / 2.2)) * np.abs(np.sin(np.pi * v * n / 2.2))
    cloth = 0.16 + 0.06 * weave + 0.025 * _noise(r, n, 0.6) + 0.02 * _noise(r, n, n * 0.1)
    tape = np.exp(-(((np.abs(u) - W / 2 - 0.02) / 0.012) ** 2)) * 0.06  # stitched tape border
    gv = v / P + p["phase"]
    k = np.floor(gv).astype(int)
    fr = gv - k
    side = np.where(k % 2 == 0, -1.0, 1.0).astype(np.float32)
    shift = np.zeros_like(u)
    height = np.full_like(u, 0.72)
    present = np.ones_like(u, dtype=bool)
    for i in p["remove"]:
        present &= k != i
    for i, s in p["split"]:
        shift = np.where(k == i, s, shift)
    for i, h in p["squeeze"]:
        height = np.where(k == i, h, height)
    uc = u - side * (W * 0.2 + shift)  # tooth centre sits on its own side, overlapping the middle
    sd = _box_sd(uc, (fr - 0.5) * P, W * 0.32, height * P / 2, r=0.25 * height * P / 2)
    tooth = _aa(sd, n) * present
    shade = 0.55 + 0.15 * np.cos(np.pi * (fr - 0.5)) - 0.1 * np.abs(uc) / W
    img = cloth + tape + tooth * (shade - cloth)
    regions = {
        "fg": np.ones((n, n), bool),
        "teeth": np.abs(u) < W * 0.45,
        "cloth": np.abs(u) > W * 0.75,
        "border": (np.abs(u) > W * 0.45) & (np.abs(u) < W * 0.85),
    }
    return img[..., None], regions


def _zipper_teeth(rng, p, count):
    first = int(np.floor((0.5 - 0.35) / p["period"] + p["phase"])) + int(rng.integers(0, 4))
    return [first + i for i in range(count)]


def _zipper_broken(rng, p):
    p["remove"] = tuple(_zipper_teeth(rng, p, int(rng.integers(1, 3))))
    return p


def _zipper_split(rng, p):
    p["split"] = tuple(
        (i, rng.uniform(0.03, 0.06)) for i in _zipper_teeth(rng, p, int(rng.integers(2, 5)))
    )
    return p


def _zipper_squeezed(rng, p):
    p["squeeze"] = tuple(
        (i, rng.uniform(0.35, 0.5)) for i in _zipper_teeth(rng, p, int(rng.integers(2, 4)))
    )
    return p


# ----------------------------------------------------------------------------- objects
def _jitter(rng, sd=0.015):
    return 0.5 + rng.normal(0, sd), 0.5 + rng.normal(0, sd)


def _placed(rng, sd):
    """The head of an object's parameters: its drawing seed and a centre jittered by ``sd``.

    The centre is drawn first, then the seed; parameters that the caller adds
    after ``**_placed(rng, sd)`` in its dict display are drawn after both.
    """
    cx, cy = _jitter(rng, sd)
    return {"seed": _seed(rng), "cx": cx, "cy": cy}


def _bottle_sample(rng):
    return {**_placed(rng, 0.012), "R": rng.uniform(0.4, 0.43), "breaks": ()}


def _bottle_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], 0.0)
    R = p["R"]
    rho, phi = np.hypot(u, v) / R, np.arctan2(v, u)
    glass = _aa((rho - 1) * R, n)
    for ang, width, depth in p["breaks"]:
        dphi = np.abs((phi - ang + np.pi) % _TWO_PI - np.pi)
        jag = 1 + 0.25 * np.sin(phi * 23 + ang) + 0.15 * np.sin(phi * 41)
        broken = (dphi < width * jag) & (rho > 1 - depth * jag)
        glass = glass * ~broken
    bg = 0.12 + 0.025 * _noise(r, n, n * 0.15) + 0.01 * _noise(r, n, 0.6)
    ridges = 0.04 * np.cos(phi * 9 + 0.6 * _noise(r, n, n * 0.05))
    body = (
        0.32
        + 0.4 * np.exp(-(((rho - 0.88) / 0.05) ** 2))
        + ridges
        + 0.2 * np.exp(-(((rho - 0.5) / 0.04) ** 2))
    )
    body = np.where(rho < 0.46, 0.05 + 0.15 * rho, body)
    img = bg[..., None] * _col(1.0, 1.0, 0.95) + glass[..., None] * (
        body[..., None] * _col(0.85, 0.75, 0.5) - bg[..., None]
    )
    return img, {"fg": rho < 0.97, "inside": rho < 0.8}


def _bottle_break(width, depth):
    def modify(rng, p):
        p["breaks"] = ((rng.uniform(0, _TWO_PI), rng.uniform(*width), rng.uniform(*depth)),)
        return p

    return modify


_CABLE_COLOURS = (_col(0.2, 0.6, 0.25), _col(0.2, 0.35, 0.75), _col(0.5, 0.33, 0.2))


def _cable_sample(rng):
    return {
        **_placed(rng, 0.01),
        "angle": rng.uniform(-0.15, 0.15),
        "R": rng.uniform(0.42, 0.44),
        "order": (0, 1, 2),
        "offset": ((0, 0), (0, 0), (0, 0)),
        "present": (1, 1, 1),
        "core": (1, 1, 1),
    }


def _cable_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], p["angle"])
    R = p["R"]
    rho = np.hypot(u, v)
    bg = 0.72 + 0.03 * _noise(r, n, n * 0.2) + 0.015 * _noise(r, n, 0.6)
    img = np.repeat(bg[..., None], 3, axis=-1)
    sheath = _aa(rho - R, n)
    img = _blend(img, sheath, _col(0.16, 0.17, 0.16))
    img = img + (sheath * 0.08 * np.exp(-(((rho - 0.93 * R) / 0.01) ** 2)))[..., None]
    filler = _aa(rho - 0.84 * R, n)
    img = (
        _blend(img, filler, _col(0.68, 0.66, 0.6)) + (filler * 0.03 * _noise(r, n, 1.0))[..., None]
    )
    regions = {
        "fg": rho < R,
        "sheath": (rho > 0.84 * R) & (rho < R),
        "insulation": np.zeros((n, n), bool),
    }
    strands = 0.06 * np.cos(u * n * 1.6) * np.cos(v * n * 1.6)
    for i in range(3):
        if not p["present"][i]:
            continue
        a = i * _TWO_PI / 3 + np.pi / 2
        wx = 0.42 * R * np.cos(a) + p["offset"][i][0]
        wy = 0.42 * R * np.sin(a) + p["offset"][i][1]
        d = np.hypot(u - wx, v - wy)
        ins = _aa(d - 0.3 * R, n)
        img = (
            _blend(img, ins, _CABLE_COLOURS[p["order"][i]])
            + (ins * 0.05 * np.exp(-(((d / (0.3 * R) - 0.8) / 0.1) ** 2)))[..., None]
        )
        regions["insulation"] |= (d < 0.3 * R) & (d > 0.2 * R)
        if p["core"][i]:
            core = _aa(d - 0.18 * R, n)
            img = _blend(img, core, _col(0.82, 0.52, 0.25)) + (core * strands)[..., None]
    return img, regions


def _cable_modify(kind):
    def modify(rng, p):
        i = int(rng.integers(3))
        if kind == "bent":
            a = rng.uniform(0, _TWO_PI)
            off = list(p["offset"])
            off[i] = (0.08 * p["R"] * np.cos(a), 0.08 * p["R"] * np.sin(a))
            p["offset"] = tuple(off)
        elif kind == "swap":
            j = (i + 1 + int(rng.integers(2))) % 3
            order = list(p["order"])
            order[i], order[j] = order[j], order[i]
            p["order"] = tuple(order)
        elif kind == "missing_cable":
            p["present"] = tuple(0 if k == i else 1 for k in range(3))
        else:  # missing_wire
            p["core"] = tuple(0 if k == i else 1 for k in range(3))
        return p

    return modify


def _capsule_sample(rng):
    return {
        **_placed(rng, 0.01),
        "angle": rng.normal(0, 0.02),
        "L": rng.uniform(0.36, 0.38),
        "W": rng.uniform(0.12, 0.13),
        "glyphs": (1, 1, 1),
        "squeeze": None,
    }


def _capsule_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], p["angle"])
    L, W = p["L"], p["W"]
    width = np.full_like(u, W)
    if p["squeeze"] is not None:
        u0, s = p["squeeze"]
        width = W * (1 - s * np.exp(-(((u - u0) / 0.05) ** 2)))
    core = np.abs(u) - (L - W)
    sd = np.hypot(np.maximum(core, 0), v) - width
    shape = _aa(sd, n)
    bg = 0.82 + 0.025 * _noise(r, n, n * 0.2) + 0.012 * _noise(r, n, 0.6)
    img = np.repeat(bg[..., None], 3, axis=-1) * _col(1.0, 1.0, 0.97)
    light = 1 + 0.35 * np.exp(-((((v / W) + 0.45) / 0.2) ** 2)) - 0.25 * (v / W) ** 2
    colour = np.where((u < 0)[..., None], _col(0.14, 0.13, 0.13), _col(0.86, 0.46, 0.13))
    img = _blend(img, shape, 0) + (shape * light)[..., None] * colour
    img = img * (1 - 0.3 * np.exp(-((u / 0.008) ** 2)) * shape)[..., None]  # the seam
    ink = np.full((n, n), np.inf, np.float32)
    scale = L / 0.37
    for k, x0 in enumerate((0.1, 0.18, 0.26)):
        if not p["glyphs"][k]:
            continue
        if k == 0:  # a "5"
            five = np.array(
                [
                    [0.025, -0.04],
                    [-0.02, -0.04],
                    [-0.02, 0.0],
                    [0.02, 0.0],
                    [0.02, 0.04],
                    [-0.025, 0.04],
                ]
            )
            ink = np.minimum(ink, _seg_dist(n, _to_image(five * scale + [x0 * scale, 0.0], p)))
        else:  # a "0"
            ink = np.minimum(ink, np.abs(_ellipse_sd(u - x0 * scale, v, 0.026, 0.045)) * n)
    inked = (ink <= 0.7 + n / 160) & (shape > 0.5)
    img = _blend(img, inked.astype(np.float32) * 0.9, _col(0.1, 0.08, 0.06))
    return img, {"fg": shape > 0.5}


def _capsule_imprint(rng, p):
    keep = [1, 1, 1]
    for k in rng.choice(3, size=int(rng.integers(1, 3)), replace=False):
        keep[k] = 0
    p["glyphs"] = tuple(keep)
    return p


def _capsule_squeeze(rng, p):
    p["squeeze"] = (rng.uniform(-0.25, 0.25), rng.uniform(0.12, 0.25))
    return p


def _hazelnut_sample(rng):
    cx, cy = _jitter(rng, 0.03)
    a = rng.uniform(0.3, 0.33)
    return {
        "seed": _seed(rng),
        "cx": cx,
        "cy": cy,
        "angle": rng.uniform(0, _TWO_PI),
        "a": a,
        "b": a * rng.uniform(0.82, 0.88),
    }


def _hazelnut_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], p["angle"])
    a, b = p["a"], p["b"]
    b_eff = b * (1 - 0.3 * np.clip(u / a, 0, 1) ** 2)
    q = np.sqrt((u / a) ** 2 + (v / b_eff) ** 2)
    shape = _aa((q - 1) * b, n)
    bg = 0.06 + 0.02 * _noise(r, n, n * 0.15) + 0.01 * _noise(r, n, 0.6)
    stripes = 0.08 * np.sin(_TWO_PI * (3.5 * v / b + 0.5 * _noise(r, n, n * 0.08)))
    light = 1.05 - 0.45 * q**2 + stripes + 0.04 * _noise(r, n, 0.8)
    hilum = np.exp(-(((u + 0.85 * a) / (0.12 * a)) ** 2 + (v / (0.5 * b)) ** 2))
    body = light[..., None] * _col(0.62, 0.38, 0.18) + hilum[..., None] * _col(0.25, 0.22, 0.15)
    img = bg[..., None] * _col(1.0, 0.95, 0.9) * (1 - shape[..., None]) + body * shape[..., None]
    return img, {"fg": q < 0.92}


def _metal_nut_sample(rng):
    return {
        **_placed(rng, 0.015),
        "angle": rng.uniform(0, _TWO_PI),
        "R": rng.uniform(0.18, 0.195),
        "bend": None,
        "flip": False,
    }


def _metal_nut_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], p["angle"])
    R = p["R"]
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    sd = rho - R
    for k in range(4):
        ang = k * np.pi / 2
        if p["bend"] is not None and p["bend"][0] == k:
            ang += p["bend"][1]
        wu, wv = _rotate(u, v, ang)
        notch = -1 if p["flip"] else 1
        wing = _box_sd(wu - R * 1.2, wv - notch * 0.012, R * 0.55, R * 0.3, r=0.02)
        cutout = _box_sd(wu - R * 1.6, wv + notch * R * 0.3, R * 0.2, R * 0.12)
        sd = np.minimum(sd, np.maximum(wing, -cutout))
    sd = np.maximum(sd, -(rho - 0.38 * R))
    shape = _aa(sd, n)
    bg = 0.16 + 0.02 * _noise(r, n, n * 0.2) + 0.01 * _noise(r, n, 0.6)
    brushed = 0.05 * _noise(r, n, 0.8)
    metal = 0.5 + 0.18 * np.cos(phi - 0.8) * np.clip(rho / R, 0, 1.5) + brushed
    if p["flip"]:
        metal = metal + 0.12 * np.sin(rho / R * 18)
    img = bg[..., None] * (1 - shape[..., None]) + (shape * metal)[..., None] * _col(
        0.95, 0.95, 1.0
    )
    return img, {"fg": sd < -1.0 / n}


def _metal_nut_bend(rng, p):
    p["bend"] = (int(rng.integers(4)), _sign(rng) * rng.uniform(0.25, 0.5))
    return p


def _metal_nut_flip(rng, p):
    p["flip"] = True
    return p


def _pill_sample(rng):
    return {
        **_placed(rng, 0.01),
        "angle": rng.normal(0, 0.02),
        "a": rng.uniform(0.38, 0.4),
        "b": rng.uniform(0.2, 0.22),
        "letters": (1, 1),
        "speck": (0.78, 0.32, 0.26),
        "speck_level": 2.3,
    }


def _pill_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], p["angle"])
    a, b = p["a"], p["b"]
    sd = _ellipse_sd(u, v, a, b)
    shape = _aa(sd, n)
    bg = 0.1 + 0.02 * _noise(r, n, n * 0.15) + 0.01 * _noise(r, n, 0.6)
    light = 1 - 0.2 * ((u / a) ** 2 + (v / b) ** 2) + 0.02 * _noise(r, n, 0.8)
    body = light[..., None] * _col(0.92, 0.9, 0.86)
    specks = np.clip((_noise(r, n, 0.9) - p["speck_level"]) * 3, 0, 1) * (sd < -0.01)
    body = _blend(body, specks, _col(*p["speck"]))
    ink = np.full((n, n), np.inf, np.float32)
    F = np.array([[0.02, -0.04], [-0.02, -0.04], [-0.02, 0.04], [-0.02, 0.0], [0.015, 0.0]]) * 1.3
    for k, x0 in enumerate((-0.04, 0.04)):
        if p["letters"][k]:
            ink = np.minimum(ink, _seg_dist(n, _to_image(F + [x0, 0.0], p)))
    body = _blend(body, ((ink <= 0.6 + n / 120) * 0.85).astype(np.float32), _col(0.6, 0.22, 0.22))
    img = bg[..., None] * (1 - shape[..., None]) + body * shape[..., None]
    return img, {"fg": sd < -1.0 / n}


def _pill_imprint(rng, p):
    p["letters"] = (0, 1) if rng.random() < 0.5 else (1, 0)
    return p


def _pill_type(rng, p):
    p["speck"] = tuple(rng.uniform(0.1, 0.5, 3))
    p["speck_level"] = rng.uniform(1.6, 1.9)
    return p


def _screw_sample(rng):
    return {
        "seed": _seed(rng),
        "cx": rng.uniform(0.4, 0.6),
        "cy": rng.uniform(0.4, 0.6),
        "angle": rng.uniform(0, _TWO_PI),
        "L": rng.uniform(0.27, 0.29),
        "front": 0.0,
        "damage": None,
    }


def _screw_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], p["angle"])
    L, w, tip, hr = p["L"], 0.034, 0.06, 0.065
    u = u + 0.17  # the head sits behind the centre
    pitch = 0.022
    thread = np.abs(np.sin(np.pi * u / pitch))
    serr = np.full_like(u, 0.3)
    if p["damage"] is not None:
        u0, length, side = p["damage"]
        inside = np.abs(u - u0) < length
        if side:
            inside &= v * side > 0
        serr = np.where(inside, 0.0, serr)
    half = w * (1 + serr * thread)
    half = np.where(u > L, w * (1 + serr * thread) * np.clip(1 - (u - L) / tip, 0, 1), half)
    end = L + tip - p["front"]
    shaft = np.maximum(np.maximum(np.abs(v) - half, -u), u - end)
    head = np.hypot(u + 0.02, v) - hr
    sd = np.minimum(shaft, head)
    shape = _aa(sd, n)
    bg = 0.78 + 0.02 * _noise(r, n, n * 0.2) + 0.012 * _noise(r, n, 0.6)
    metal = (
        0.22
        + 0.12 * thread * (u > 0)
        + 0.15 * np.exp(-(((v / w - 0.3) / 0.3) ** 2))
        + 0.03 * _noise(r, n, 0.8)
    )
    metal = np.where(
        head < 0, 0.3 + 0.2 * np.exp(-(((np.hypot(u + 0.02, v) / hr - 0.6) / 0.15) ** 2)), metal
    )
    img = bg * (1 - shape) + metal * shape
    regions = {
        "fg": sd < -0.5 / n,
        "head": head < -0.5 / n,
        "neck": (shaft < -0.5 / n) & (u < 0.08),
    }
    return img[..., None], regions


def _screw_front(rng, p):
    p["front"] = rng.uniform(0.03, 0.07)
    return p


def _screw_damage(one_side):
    """Flattened thread over a short stretch: on one side (thread_side) or both (thread_top)."""

    def modify(rng, p):
        side = _sign(rng) if one_side else 0
        p["damage"] = (rng.uniform(0.08, 0.24), rng.uniform(0.03, 0.06), side)
        return p

    return modify


def _toothbrush_sample(rng):
    return {**_placed(rng, 0.01), "angle": rng.normal(0, 0.02), "moved": ()}


def _toothbrush_draw(n, p):
    r = np.random.default_rng(p["seed"])
    u, v = _local(n, p["cx"], p["cy"], p["angle"])
    head = _aa(_ellipse_sd(u, v, 0.2, 0.42), n)
    bg = 0.07 + 0.02 * _noise(r, n, n * 0.15) + 0.01 * _noise(r, n, 0.6)
    img = bg[..., None] * (1 - head[..., None]) + (head * (0.6 + 0.03 * _noise(r, n, 1.0)))[
        ..., None
    ] * _col(0.9, 0.9, 0.95)
    bristle = 0.1 * _noise(r, n, 0.6)
    white, blue = _col(0.93, 0.93, 0.95), _col(0.25, 0.45, 0.85)
    # the regular 8 x 4 grid of tufts in one pass; moved / missing tufts are drawn separately
    gx = np.clip(np.round(u / 0.085 + 1.5), 0, 3)
    gy = np.clip(np.round(v / 0.09 + 3.5), 0, 7)
    regular = _aa(np.hypot(u - (gx - 1.5) * 0.085, v - (gy - 3.5) * 0.09) - 0.036, n)
    moved = {k: (dx, dy, s) for k, dx, dy, s in p["moved"]}
    if moved:
        regular = regular * ~np.isin(gy * 4 + gx, list(moved))
    colour = np.where((gy % 2 == 0)[..., None], white, blue)
    img = (
        img * (1 - regular[..., None])
        + regular[..., None] * colour
        + (regular * bristle)[..., None]
    )
    for k, (dx, dy, s) in sorted(moved.items()):
        if s == 0:
            continue
        x, y = (k % 4 - 1.5) * 0.085, (k // 4 - 3.5) * 0.09
        tuft = _aa(np.hypot(u - x - dx, v - y - dy) - 0.036 * s, n)
        img = _blend(img, tuft, white if (k // 4) % 2 == 0 else blue) + (tuft * bristle)[..., None]
    return img, {"fg": head > 0.5}


def _toothbrush_defective(rng, p):
    tufts = rng.choice(32, size=int(rng.integers(1, 4)), replace=False)
    moved = []
    for k in tufts:
        kind = rng.integers(3)
        if kind == 0:  # missing tuft
            moved.append((int(k), 0.0, 0.0, 0))
        elif kind == 1:  # bent tuft
            a = rng.uniform(0, _TWO_PI)
            moved.append((int(k), 0.03 * np.cos(a), 0.03 * np.sin(a), 1.0))
        else:  # splayed tuft
            moved.append((int(k), 0.0, 0.0, rng.uniform(1.3, 1.6)))
    p["moved"] = tuple(moved)
    return p


def _transistor_sample(rng):
    return {
        "seed": _seed(rng),
        "cx": 0.5 + rng.normal(0, 0.01),
        "cy": 0.4 + rng.normal(0, 0.01),
        "angle": rng.normal(0, 0.02),
        "bend": None,
        "cut": None,
        "turn": 0.0,
    }


def _transistor_draw(n, p):
    r = np.random.default_rng(p["seed"])
    xx, yy = _coords(n)
    board = 0.5 + 0.03 * _noise(r, n, n * 0.1) + 0.02 * _noise(r, n, 0.7)
    img = board[..., None] * _col(0.8, 0.92, 0.78)
    for hx in (-0.11, 0.0, 0.11):  # solder pads
        pad = _aa(np.hypot(xx - 0.5 - hx, yy - 0.85) - 0.03, n)
        img = _blend(img, pad, _col(0.7, 0.68, 0.6))
    u, v = _local(n, p["cx"], p["cy"], p["angle"] + p["turn"])
    sd_all = np.full((n, n), np.inf, np.float32)
    for i, lx in enumerate((-0.11, 0.0, 0.11)):
        bottom = 0.45 if p["cut"] is None or p["cut"][0] != i else p["cut"][1]
        lu = u - lx
        if p["bend"] is not None and p["bend"][0] == i:
            lu = lu - p["bend"][1] * np.clip((v - 0.2) / 0.25, 0, 1)
        lead = _box_sd(lu, v - (0.12 + bottom) / 2, 0.018, (bottom - 0.12) / 2)
        sd_all = np.minimum(sd_all, lead)
        img = _blend(
            img, _aa(lead, n), _col(0.8, 0.78, 0.7) * (1 + 0.1 * np.cos(lu * 80))[..., None]
        )
    tab = _box_sd(u, v + 0.19, 0.16, 0.06, r=0.01)
    tab_hole = np.hypot(u, v + 0.19) - 0.025
    tab = np.maximum(tab, -tab_hole)
    img = _blend(img, _aa(tab, n), _col(0.75, 0.75, 0.78))
    body = _box_sd(u, v, 0.18, 0.14, r=0.01)
    shine = 0.12 + 0.05 * np.exp(-(((u + v) / 0.05) ** 2)) + 0.02 * _noise(r, n, 0.8)
    img = _blend(img, _aa(body, n), 0) + (_aa(body, n) * shine)[..., None]
    sd_all = np.minimum(np.minimum(sd_all, tab), body)
    return img, {"fg": sd_all < -0.5 / n, "body": body < -1.0 / n}


def _transistor_modify(kind):
    def modify(rng, p):
        i = int(rng.integers(3))
        if kind == "bent":
            p["bend"] = (i, _sign(rng) * rng.uniform(0.04, 0.07))
        elif kind == "cut":
            p["cut"] = (i, rng.uniform(0.2, 0.35))
        else:  # misplaced
            p["turn"] = _sign(rng) * rng.uniform(0.12, 0.3)
        return p

    return modify


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class _Spec:
    size: int
    channels: int
    sample: object
    draw: object
    defects: dict


_SPECS = {
    "bottle": _Spec(
        112,
        3,
        _bottle_sample,
        _bottle_draw,
        {
            "broken_large": _variant(_bottle_break((0.5, 0.9), (0.3, 0.5))),
            "broken_small": _variant(_bottle_break((0.08, 0.18), (0.08, 0.15))),
            "contamination": _contamination("inside", radius=(0.05, 0.12)),
        },
    ),
    "cable": _Spec(
        128,
        3,
        _cable_sample,
        _cable_draw,
        {
            "bent_wire": _variant(_cable_modify("bent")),
            "cable_swap": _variant(_cable_modify("swap")),
            "combined": _combined(_cut("insulation"), _hole("sheath", radius=(0.015, 0.03))),
            "cut_inner_insulation": _cut("insulation", length=(0.05, 0.12)),
            "cut_outer_insulation": _cut("sheath", length=(0.05, 0.15)),
            "missing_cable": _variant(_cable_modify("missing_cable")),
            "missing_wire": _variant(_cable_modify("missing_wire")),
            "poke_insulation": _hole("insulation", radius=(0.012, 0.025)),
        },
    ),
    "capsule": _Spec(
        120,
        3,
        _capsule_sample,
        _capsule_draw,
        {
            "crack": _crack(length=(0.06, 0.15)),
            "faulty_imprint": _variant(_capsule_imprint),
            "poke": _hole(radius=(0.012, 0.025)),
            "scratch": _scratch(length=(0.08, 0.2)),
            "squeeze": _variant(_capsule_squeeze),
        },
    ),
    "carpet": _Spec(
        128,
        3,
        _carpet_sample,
        _carpet_draw,
        {
            "color": _spot(radius=(0.05, 0.12)),
            "cut": _cut(width=(2.0, 4.0)),
            "hole": _hole(radius=(0.03, 0.07)),
            "metal_contamination": _contamination(radius=(0.02, 0.05), bright=True),
            "thread": _thread(width=(1.0, 2.0)),
        },
    ),
    "grid": _Spec(
        128,
        1,
        _grid_sample,
        _grid_draw,
        {
            "bent": _warp(radius=(0.05, 0.1)),
            "broken": _variant(_grid_broken),
            "glue": _translucent(radius=(0.03, 0.08), colour=(0.6, 0.6, 0.6)),
            "metal_contamination": _contamination(radius=(0.01, 0.03), bright=True),
            "thread": _thread(),
        },
    ),
    "hazelnut": _Spec(
        128,
        3,
        _hazelnut_sample,
        _hazelnut_draw,
        {
            "crack": _crack(length=(0.2, 0.4), width=(1.5, 3.0)),
            "cut": _cut(length=(0.15, 0.3), width=(2.5, 5.0)),
            "hole": _hole(radius=(0.04, 0.08)),
            "print": _imprint(size=(0.06, 0.12), width=(1.0, 2.0)),
        },
    ),
    "leather": _Spec(
        128,
        3,
        _leather_sample,
        _leather_draw,
        {
            "color": _spot(),
            "cut": _cut(),
            "fold": _warp(radius=(0.08, 0.16), amplitude=(2.5, 5.0), shade=0.12),
            "glue": _translucent(),
            "poke": _hole(radius=(0.01, 0.025)),
        },
    ),
    "metal_nut": _Spec(
        88,
        3,
        _metal_nut_sample,
        _metal_nut_draw,
        {
            "bent": _variant(_metal_nut_bend),
            "color": _spot(radius=(0.06, 0.14)),
            "flip": _variant(_metal_nut_flip),
            "scratch": _scratch(),
        },
    ),
    "pill": _Spec(
        96,
        3,
        _pill_sample,
        _pill_draw,
        {
            "color": _spot(radius=(0.05, 0.12)),
            "contamination": _contamination(radius=(0.03, 0.08)),
            "crack": _crack(width=(1.0, 2.0)),
            "faulty_imprint": _variant(_pill_imprint),
            "pill_type": _variant(_pill_type),
            "scratch": _scratch(),
        },
    ),
    "screw": _Spec(
        128,
        1,
        _screw_sample,
        _screw_draw,
        {
            "manipulated_front": _variant(_screw_front),
            "scratch_head": _scratch("head", length=(0.06, 0.12), width=(1.4, 2.4)),
            "scratch_neck": _scratch("neck", length=(0.06, 0.12), width=(1.4, 2.4)),
            "thread_side": _variant(_screw_damage(True)),
            "thread_top": _variant(_screw_damage(False)),
        },
    ),
    "tile": _Spec(
        104,
        3,
        _tile_sample,
        _tile_draw,
        {
            "crack": _crack(length=(0.2, 0.45), width=(1.5, 3.0)),
            "glue_strip": _translucent(
                radius=(0.15, 0.3), aspect=(3.0, 5.0), colour=(0.9, 0.88, 0.8)
            ),
            "gray_stroke": _scratch(
                length=(0.25, 0.5), width=(3.0, 6.0), strength=(0.15, 0.3), turn=0.1
            ),
            "oil": _translucent(radius=(0.1, 0.2), colour=(0.2, 0.18, 0.15)),
            "rough": _rough(radius=(0.1, 0.2)),
        },
    ),
    "toothbrush": _Spec(
        128,
        3,
        _toothbrush_sample,
        _toothbrush_draw,
        {
            "defective": _variant(_toothbrush_defective),
        },
    ),
    "transistor": _Spec(
        128,
        3,
        _transistor_sample,
        _transistor_draw,
        {
            "bent_lead": _variant(_transistor_modify("bent")),
            "cut_lead": _variant(_transistor_modify("cut")),
            "damaged_case": _contamination("body", radius=(0.05, 0.1), bright=True),
            "misplaced": _variant(_transistor_modify("misplaced")),
        },
    ),
    "wood": _Spec(
        128,
        3,
        _wood_sample,
        _wood_draw,
        {
            "color": _spot(radius=(0.06, 0.15)),
            "combined": _combined(_scratch(width=(1.5, 3.0)), _spot(radius=(0.05, 0.1))),
            "hole": _hole(radius=(0.02, 0.05)),
            "liquid": _translucent(radius=(0.08, 0.18), colour=(0.25, 0.15, 0.08)),
            "scratch": _scratch(length=(0.2, 0.5), width=(1.5, 3.0)),
        },
    ),
    "zipper": _Spec(
        128,
        1,
        _zipper_sample,
        _zipper_draw,
        {
            "broken_teeth": _variant(_zipper_broken),
            "fabric_border": _contamination("border", radius=(0.02, 0.05)),
            "fabric_interior": _rough("cloth", radius=(0.04, 0.09), strength=(0.15, 0.25)),
            "rough": _rough("teeth", radius=(0.04, 0.08)),
            "split_teeth": _variant(_zipper_split),
            "squeezed_teeth": _variant(_zipper_squeezed),
        },
    ),
}


# ----------------------------------------------------------------------------- writer
def _image_rng(random_state, category, folder, index):
    """The generator of one image: seeded from (random_state, category, folder, index)."""
    key = [random_state, zlib.crc32(category.encode()), zlib.crc32(folder.encode()), index]
    return np.random.default_rng(key)


#: Good images drawn, at most, to place one defect (see _render).
_BASE_ATTEMPTS = 5


def _render(category, folder, index, size, random_state):
    """One image (uint8, (H, W) or (H, W, 3)) and its mask (bool or None)."""
    spec = _SPECS[category]
    rng = _image_rng(random_state, category, folder, index)
    mask = None
    # A small image can leave a defect no room (a pill without specks to recolour):
    # then draw another good image for it, up to _BASE_ATTEMPTS in all.
    for attempt in range(_BASE_ATTEMPTS):
        params = spec.sample(rng)
        img, regions = spec.draw(size, params)
        img = np.clip(img, 0, 1).astype(np.float32)
        if folder in ("train/good", "test/good"):
            break
        defect = folder.split("/", 1)[1]
        ctx = _Ctx(size, img, regions, params, spec.draw)
        try:
            img, mask = _apply_defect(rng, spec.defects[defect], ctx, defect, category)
            break
        except ValueError:
            if attempt == _BASE_ATTEMPTS - 1:
                raise
    img = _lighting(rng, img)
    out = np.round(img * 255).astype(np.uint8)
    return (out[..., 0] if out.shape[-1] == 1 else out), mask


#: The constraints of the generators' parameters (categories are checked against
#: each generator's own list by ``_check_categories``).
_GENERATOR_PARAMS: dict[str, Any] = {
    "root": [str, os.PathLike],
    "categories": "no_validation",
    "n_train": [Interval(Integral, 1, None, closed="left")],
    "n_test_good": [Interval(Integral, 0, None, closed="left")],
    "n_test_defect": [Interval(Integral, 0, None, closed="left")],
    "image_size": [Interval(Integral, 32, None, closed="left")],
    "random_state": [Interval(Integral, 0, None, closed="left"), None],
    "overwrite": ["boolean"],
}


def _generator_seed(random_state):
    """``random_state`` as an int; None draws a fresh one."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**31 - 1))
    return int(random_state)


def _check_categories(categories, known=None, kind="synthetic"):
    """``categories`` as a list of names from ``known`` (default: the synthetic ones)."""
    known = _SPECS if known is None else known
    if categories is None:
        return list(known)
    if isinstance(categories, str):
        categories = [categories]
    categories = list(categories)
    unknown = [c for c in categories if c not in known]
    if unknown or not categories:
        raise ValueError(
            f"Unknown {kind} categories {unknown}; choose from {sorted(known)}."
            if unknown
            else "categories must not be empty."
        )
    return list(dict.fromkeys(categories))


def synthetic_defect_types(category: str) -> list[str]:
    """The defect types the synthetic generator draws for ``category``.

    Parameters
    ----------
    category : str
        One of :data:`CATEGORIES`.

    Returns
    -------
    defect_types : list of str
        Sorted defect-type names (test folder names).

    Examples
    --------
    >>> from mvtec_sklearn.datasets import synthetic_defect_types
    >>> synthetic_defect_types("bottle")
    ['broken_large', 'broken_small', 'contamination']
    """
    return sorted(_SPECS[_check_categories([category])[0]].defects)


@validate_params(
    {**_GENERATOR_PARAMS, "image_size": [*_GENERATOR_PARAMS["image_size"], None]},
    prefer_skip_nested_validation=True,
)
def make_mvtec_like(
    root: str | os.PathLike[str],
    categories: str | Sequence[str] | None = None,
    n_train: int = 60,
    n_test_good: int = 20,
    n_test_defect: int = 40,
    image_size: int | None = None,
    random_state: int | None = 0,
    overwrite: bool = False,
) -> str:
    """Write a synthetic dataset in the exact MVTec AD folder layout.

    Each category is a fair miniature of its MVTec AD namesake: textures
    (carpet weave, wire grid, leather, tile, wood, zipper) and objects with
    pose, position and lighting jitter (bottle, cable, capsule, hazelnut,
    metal_nut, pill, screw, toothbrush, transistor); grid, screw and zipper are
    1-channel PNGs like the originals. Every category has several defect
    types, small and large, each with its exact ground-truth mask covering
    0.1-20 % of the image. Per-image lighting varies more than any defect
    moves the image mean, so no defect type is given away by the mean
    intensity alone.

    The layout is ``root/<category>/train/good/000.png``,
    ``test/good/000.png``, ``test/<defect>/000.png`` and
    ``ground_truth/<defect>/000_mask.png``; numbers restart at 000 in every
    folder.

    Parameters
    ----------
    root : str or os.PathLike
        Output folder (created if needed).
    categories : str or list of str or None, default=None
        Categories to write; ``None`` writes all 15 (:data:`CATEGORIES`).
    n_train : int, default=60
        Good training images per category (at least 1).
    n_test_good : int, default=20
        Good test images per category (no ``test/good`` folder when 0).
    n_test_defect : int, default=40
        Defective test images per category, spread as evenly as possible over
        the category's defect types (the first types get the remainder;
        types that get no image get no folder).
    image_size : int or None, default=None
        Side length of every (square) image, at least 32. ``None`` uses each
        category's own size (88-128 px, in proportion to MVTec AD's
        resolutions).
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

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.datasets import make_mvtec_like, load_mvtec
    >>> root = make_mvtec_like(tempfile.mkdtemp(), categories=["bottle"], n_train=3,
    ...                        n_test_good=2, n_test_defect=3, image_size=64)
    >>> test = load_mvtec(root, "bottle", split="test")
    >>> test.target.tolist(), sorted(set(test.defect_type))
    ([0, 0, 1, 1, 1], ['broken_large', 'broken_small', 'contamination', 'good'])
    """
    categories = _check_categories(categories)
    random_state = _generator_seed(random_state)

    def render(category, folder, index):
        size = image_size or _SPECS[category].size
        return _render(category, folder, index, size, random_state)

    counts = (n_train, n_test_good, n_test_defect)
    return _write_dataset(root, categories, overwrite, counts, synthetic_defect_types, render)


def _write_dataset(root, categories, overwrite, counts, defect_types, render):
    """Write every category's folders under ``root``, the one writer of both generators.

    Parameters
    ----------
    root : str or os.PathLike
        Output folder (created if needed).
    categories : list of str
        Checked category names.
    overwrite : bool
        Replace category folders that exist; otherwise raise ``FileExistsError``.
    counts : tuple of int
        ``(n_train, n_test_good, n_test_defect)`` per category.
    defect_types : callable
        ``defect_types(category)``: the category's sorted defect-type names.
    render : callable
        ``render(category, folder, index)``: one image (uint8) and its mask
        (bool, or None for good images).

    Returns
    -------
    root : str
    """
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    for category in categories:
        cat_dir = os.path.join(root, category)
        if os.path.exists(cat_dir):
            if not overwrite:
                raise FileExistsError(
                    f"{cat_dir!r} already exists; pass overwrite=True or write to another root."
                )
            shutil.rmtree(cat_dir)
        _write_category(cat_dir, category, defect_types(category), *counts, render)
    return root


def _write_category(cat_dir, category, defects, n_train, n_test_good, n_test_defect, render):
    """Write one category's folders; ``render(category, folder, index)`` gives image and mask."""
    per_type = [
        n_test_defect // len(defects) + (i < n_test_defect % len(defects))
        for i in range(len(defects))
    ]
    jobs = [("train/good", n_train), ("test/good", n_test_good)]
    jobs += [(f"test/{d}", k) for d, k in zip(defects, per_type)]
    for folder, count in [(f, k) for f, k in jobs if k > 0]:
        out_dir = os.path.join(cat_dir, *folder.split("/"))
        os.makedirs(out_dir, exist_ok=True)
        if folder.startswith("test/") and folder != "test/good":
            mask_dir = os.path.join(cat_dir, "ground_truth", folder.split("/", 1)[1])
            os.makedirs(mask_dir, exist_ok=True)
        for i in range(count):
            img, mask = render(category, folder, i)
            Image.fromarray(img).save(os.path.join(out_dir, f"{i:03d}.png"), compress_level=1)
            if mask is not None:
                Image.fromarray(mask.astype(np.uint8) * 255).save(
                    os.path.join(mask_dir, f"{i:03d}_mask.png"), compress_level=1
                )


#: The Parameters and Returns sections of ``synthetic_root`` and ``photos_root``.
_ROOT_PARAMETERS_DOC = """Parameters
    ----------
    data_home : str or os.PathLike or None, default=None
        Where datasets are kept. ``None`` uses the ``MVTEC_SKLEARN_DATA``
        environment variable, else ``~/.cache/mvtec_sklearn``.
    **make_kwargs
        Passed to :func:`{make}` (``categories``, ``n_train``,
        ``n_test_good``, ``n_test_defect``, ``image_size``, ``random_state``).

    Returns
    -------
    root : str
        The dataset folder, in MVTec AD layout."""


def _default_data_home():
    return os.environ.get("MVTEC_SKLEARN_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "mvtec_sklearn"
    )


def synthetic_root(data_home: str | os.PathLike[str] | None = None, **make_kwargs: Any) -> str:
    """Generate the synthetic dataset once and return its folder (reused afterwards).

    The folder name is a hash of ``make_kwargs`` and the generator version, so
    different settings never share a folder and a new generator version never
    returns stale images. Generation writes into a temporary folder that is
    renamed into place when complete, so an interrupted run or a concurrent
    process never leaves a half-written dataset behind.

    {parameters}

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.datasets import synthetic_root, list_categories
    >>> home = tempfile.mkdtemp()
    >>> root = synthetic_root(home, categories=["grid"], n_train=2, n_test_good=1,
    ...                       n_test_defect=2, image_size=32)
    >>> list_categories(root), synthetic_root(home, categories=["grid"], n_train=2,
    ...     n_test_good=1, n_test_defect=2, image_size=32) == root
    (['grid'], True)
    """
    return _cached_root(
        "synthetic", make_mvtec_like, GENERATOR_VERSION, _check_categories, data_home, make_kwargs
    )


synthetic_root.__doc__ = (synthetic_root.__doc__ or "").replace(
    "{parameters}", _ROOT_PARAMETERS_DOC.format(make="make_mvtec_like")
)


def _cached_root(name, make, version, check_categories, data_home, make_kwargs):
    """Generate a dataset with ``make`` once, in a folder keyed on its settings; reuse it."""
    caller = f"{name}_root()"
    if "root" in make_kwargs or "overwrite" in make_kwargs:
        raise TypeError(f"{caller} chooses the folder itself; do not pass root or overwrite.")
    import inspect

    signature = inspect.signature(make).parameters
    allowed = set(signature) - {"root", "overwrite"}
    unknown = sorted(set(make_kwargs) - allowed)
    if unknown:
        raise TypeError(
            f"Unknown {make.__name__} arguments {unknown}; allowed: {sorted(allowed)}."
        )
    if make_kwargs.get("random_state", 0) is None:
        raise ValueError(f"{caller} needs a fixed random_state (an int) to reuse its folder.")
    defaults = {k: v.default for k, v in signature.items() if k in allowed}
    settings = {**defaults, **make_kwargs}
    settings["categories"] = check_categories(settings["categories"])
    settings = {k: (int(v) if isinstance(v, np.integer) else v) for k, v in settings.items()}
    key = hashlib.sha256(
        json.dumps({"version": version, **settings}, sort_keys=True).encode()
    ).hexdigest()[:16]
    home = os.fspath(data_home) if data_home is not None else _default_data_home()
    final = os.path.join(home, f"{name}-{key}")
    if os.path.isdir(final):
        return final
    os.makedirs(home, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}-tmp-", dir=home)
    try:
        make(tmp, overwrite=True, **settings)
        with open(os.path.join(tmp, "settings.json"), "w") as fh:
            json.dump({"generator_version": version, **settings}, fh, indent=1, sort_keys=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):  # not a concurrent winner: a real error
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final
