"""The one anomaly-map generator and the one anomaly-map API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mvtec_sklearn.detectors._maps import LocalizationMixin
from mvtec_sklearn.detectors._nn._functional import (
    anomaly_maps,
    gaussian_blur,
    resize_maps,
    smooth_maps,
)


def _bilinear(maps, size):
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


@pytest.mark.parametrize("output_size", [(40, 40), (57, 31)])
def test_anomaly_maps_upsample_blur_then_resize(output_size):
    maps = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(0))
    smooth, resized = anomaly_maps(maps, (40, 40), output_size, 2.0)
    expected = gaussian_blur(_bilinear(maps, (40, 40)), 2.0)
    assert torch.equal(smooth, expected)
    assert resized.dtype == torch.float32 and tuple(resized.shape) == (3, *output_size)
    assert torch.equal(resized, _bilinear(expected, output_size))


def test_maps_already_at_a_size_are_not_resampled_and_lose_nothing():
    maps = torch.rand(2, 16, 12, generator=torch.Generator().manual_seed(1))
    # skipping the same-size interpolation is exact: bilinear at scale 1 is the identity
    assert torch.equal(_bilinear(maps, (16, 12)), maps)
    assert torch.equal(smooth_maps(maps, (16, 12), 0.0), maps)
    assert torch.equal(smooth_maps(maps, (16, 12), 1.5), gaussian_blur(maps, 1.5))
    assert resize_maps(maps, (16, 12)) is maps
    double = maps.double()
    assert resize_maps(double, (16, 12)).dtype == torch.float32


class _Toy(LocalizationMixin):
    def _scores_and_maps(self, X, with_scores):
        X = np.asarray(X, dtype=np.float32)
        scores = X.reshape(len(X), -1).max(axis=1).astype(np.float64) if with_scores else None
        return scores, X


def test_localization_mixin_negates_the_anomaly_score():
    X = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    toy = _Toy()
    np.testing.assert_array_equal(toy.anomaly_map(X), X)
    scores, maps = toy.score_samples_and_anomaly_map(X)
    np.testing.assert_array_equal(scores, [-11.0, -23.0])
    np.testing.assert_array_equal(maps, X)
