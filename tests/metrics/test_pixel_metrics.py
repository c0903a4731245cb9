"""pixel_auroc and aupro against straightforward references (explicit threshold loop)."""

from __future__ import annotations

from bisect import bisect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from mvtec_sklearn.metrics import aupro, pixel_auroc


def reference_aupro(masks, maps, fpr_limit):
    """MVTec AD's AUPRO with one explicit loop over every distinct threshold."""
    regions = []
    for mask in masks:
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        regions.append([labels == k for k in range(1, n + 1)])
    normal = ~masks
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        above = maps >= t
        fprs.append(above[normal].sum() / normal.sum())
        overlaps = [above[i][r].mean() for i, rs in enumerate(regions) for r in rs]
        pros.append(np.mean(overlaps))
    fprs.append(1.0)
    pros.append(1.0)
    x, y = np.asarray(fprs), np.asarray(pros)
    # trapezoid with interpolation at the limit, as in the official evaluation code
    correction = 0.0
    if fpr_limit not in x:
        ins = bisect(x, fpr_limit)
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (fpr_limit - x[ins - 1]) / (
            x[ins] - x[ins - 1]
        )
        correction = 0.5 * (y_interp + y[ins - 1]) * (fpr_limit - x[ins - 1])
    keep = x <= fpr_limit
    x, y = x[keep], y[keep]
    return (np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction) / fpr_limit


@st.composite
def masks_and_maps(draw):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(2, 9))
    w = draw(st.integers(2, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < draw(st.floats(0.05, 0.6))
    masks.flat[rng.integers(masks.size)] = True
    masks.flat[rng.integers(masks.size)] = False
    if masks.all() or not masks.any():
        masks.flat[0] = not masks.flat[0]
    levels = draw(st.integers(2, 50))  # few levels: many ties
    maps = rng.integers(0, levels, (n, h, w)).astype(np.float64)
    maps += draw(st.floats(0, 1.5)) * masks  # some signal
    return masks, maps


@settings(max_examples=60, deadline=None)
@given(masks_and_maps(), st.sampled_from([0.05, 0.1, 0.3, 0.5, 1.0]))
def test_aupro_matches_reference(data, fpr_limit):
    masks, maps = data
    np.testing.assert_allclose(
        aupro(masks, maps, fpr_limit=fpr_limit), reference_aupro(masks, maps, fpr_limit),
        rtol=1e-9, atol=1e-12,
    )


@settings(max_examples=60, deadline=None)
@given(masks_and_maps())
def test_pixel_auroc_matches_sklearn(data):
    masks, maps = data
    np.testing.assert_allclose(
        pixel_auroc(masks, maps), roc_auc_score(masks.ravel(), maps.ravel()), rtol=1e-12
    )


def test_continuous_scores_and_invariances():
    rng = np.random.default_rng(0)
    masks = np.zeros((4, 32, 32), bool)
    masks[1, 4:10, 4:12] = True
    masks[1, 20:22, 20:30] = True
    masks[3, 15:25, 2:5] = True
    maps = rng.random(masks.shape) + 0.8 * masks
    value = aupro(masks, maps)
    np.testing.assert_allclose(value, reference_aupro(masks, maps, 0.3), rtol=1e-9)
    # monotone transforms of the scores change nothing
    np.testing.assert_allclose(aupro(masks, np.exp(3 * maps)), value, rtol=1e-9)
    np.testing.assert_allclose(pixel_auroc(masks, 2 * maps - 1), pixel_auroc(masks, maps))
    # a perfect map scores 1, an inverted one 0
    assert aupro(masks, masks.astype(float)) == pytest.approx(1.0)
    assert pixel_auroc(masks, masks.astype(float)) == 1.0
    assert pixel_auroc(masks, -masks.astype(float)) == 0.0
    # float32 maps and 0/1 integer masks are accepted
    np.testing.assert_allclose(
        pixel_auroc(masks.astype(np.uint8), maps.astype(np.float32)),
        roc_auc_score(masks.ravel(), maps.astype(np.float32).ravel()),
    )


def test_eight_connectivity_counts_diagonal_touching_pixels_as_one_region():
    masks = np.zeros((1, 6, 6), bool)
    masks[0, 1, 1] = masks[0, 2, 2] = True  # one 8-connected region of 2 pixels
    masks[0, 4, 4] = True  # a second region
    maps = np.zeros((1, 6, 6))
    maps[0, 1, 1] = 1.0  # half of region 1 found first
    maps[0, 4, 4] = 2.0  # region 2 found first
    # thresholds: 2 -> PRO 1/2 at FPR 0; 1 -> PRO 3/4 at FPR 0; 0 -> PRO 1 at FPR 1
    expected = (0.75 * 0.3 + 0.5 * (0.3 ** 2) * 0.25) / 0.3
    assert aupro(masks, maps) == pytest.approx(expected)
    assert aupro(masks, maps) == pytest.approx(reference_aupro(masks, maps, 0.3))


def test_downsample():
    rng = np.random.default_rng(1)
    masks = np.zeros((2, 40, 40), bool)
    masks[0, 10:30, 10:20] = True
    maps = rng.random(masks.shape) + masks
    sub_masks, sub_maps = masks[:, ::4, ::4], maps[:, ::4, ::4]
    assert aupro(masks, maps, downsample=4) == pytest.approx(aupro(sub_masks, sub_maps))
    assert pixel_auroc(masks, maps, downsample=4) == pytest.approx(
        roc_auc_score(sub_masks.ravel(), sub_maps.ravel())
    )
    assert aupro(masks, maps, downsample=1) == aupro(masks, maps)


@pytest.mark.parametrize("metric", [pixel_auroc, aupro])
def test_errors(metric):
    masks = np.zeros((2, 8, 8), bool)
    masks[0, 2:4, 2:4] = True
    maps = np.random.default_rng(0).random((2, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        metric(masks, maps[:, :4])
    with pytest.raises(ValueError, match="no defect pixels"):
        metric(np.zeros_like(masks), maps)
    with pytest.raises(ValueError, match="no defect-free pixels"):
        metric(np.ones_like(masks), maps)
    bad = maps.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metric(masks, bad)
    with pytest.raises(ValueError, match="shape"):
        metric(masks[0, 0], maps[0, 0])
    with pytest.raises(ValueError, match="downsample"):
        metric(masks, maps, downsample=0)


def test_aupro_fpr_limit_validation():
    masks = np.zeros((1, 4, 4), bool)
    masks[0, 0, 0] = True
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(masks, np.zeros((1, 4, 4)), fpr_limit=0)
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(masks, np.zeros((1, 4, 4)), fpr_limit=1.5)
