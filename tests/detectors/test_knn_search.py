"""The one exact kNN search shared by KNNDetector and PatchCore."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mvtec_sklearn.detectors._nn._search import (
    check_features,
    distance_block,
    nearest_neighbors,
    squared_norms,
)

METRICS = {
    "euclidean": lambda q, b: torch.cdist(q, b),
    "sqeuclidean": lambda q, b: torch.cdist(q, b) ** 2,
    "cosine": lambda q, b: 1 - torch.nn.functional.normalize(q, dim=1)
    @ torch.nn.functional.normalize(b, dim=1).T,
    "manhattan": lambda q, b: torch.cdist(q, b, p=1.0),
}


def _data(n_query=70, n_bank=53, d=5):
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(n_query, d, generator=gen, dtype=torch.float64),
            torch.randn(n_bank, d, generator=gen, dtype=torch.float64))


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("blocks", [{"max_block_elements": 300}, {"query_chunk": 9}])
@pytest.mark.parametrize("k", [1, 3])
def test_every_metric_and_blocking_matches_brute_force(metric, blocks, k):
    q, bank = _data()
    dist, idx = nearest_neighbors(q, bank, k, metric=metric, **blocks)
    ref_d, ref_i = torch.topk(METRICS[metric](q, bank).clamp(min=0), k, dim=1, largest=False)
    np.testing.assert_allclose(dist.numpy(), ref_d.numpy(), atol=1e-9)
    assert torch.equal(idx, ref_i)


@pytest.mark.parametrize("blocks", [{"max_block_elements": 300}, {"query_chunk": 9}])
def test_exclude_self_drops_exactly_the_own_row(blocks):
    _, bank = _data()
    bank = torch.cat([bank, bank[:5]])  # rows 0-4 have a twin
    dist, idx = nearest_neighbors(bank, bank, 2, exclude_self=True, **blocks)
    rows = torch.arange(bank.shape[0])
    assert not bool((idx == rows[:, None]).any())
    assert torch.equal(dist[:5, 0], torch.zeros(5, dtype=bank.dtype))  # the twin counts
    full = torch.cdist(bank, bank, compute_mode="donot_use_mm_for_euclid_dist")
    full[rows, rows] = float("inf")
    # sqrt of the expanded formula's rounding (1e-15) near 0 gives 3e-8
    np.testing.assert_allclose(dist.numpy(), full.topk(2, dim=1, largest=False)[0].numpy(),
                               atol=1e-7)


def test_fold_norms_reproduces_each_callers_arithmetic_bit_for_bit():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(40, 100, generator=gen)
    bank = torch.randn(30, 100, generator=gen)
    folded = torch.addmm(torch.einsum("ij,ij->i", bank, bank)[None, :]
                         + torch.einsum("ij,ij->i", q, q)[:, None], q, bank.T, alpha=-2.0)
    later = torch.addmm((bank * bank).sum(dim=1), q, bank.T, alpha=-2.0)
    later.add_((q * q).sum(dim=1, keepdim=True))
    assert not torch.equal(folded, later)  # the two orders do differ in the last bits
    for fold_norms, d2 in ((True, folded), (False, later)):
        dist, _ = nearest_neighbors(q, bank, 1, fold_norms=fold_norms, query_chunk=40)
        assert torch.equal(dist[:, 0], d2.min(dim=1).values.clamp(min=0).sqrt())


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("fold_norms", [True, False])
def test_distance_block_is_the_unclipped_distance_of_every_pair(metric, fold_norms):
    q, bank = _data()
    euclidean = metric in ("euclidean", "sqeuclidean")
    q_sq = squared_norms(q, fold_norms)[:, None] if euclidean else None
    bank_sq = squared_norms(bank, fold_norms) if euclidean else None
    if metric == "cosine":
        q, bank = (torch.nn.functional.normalize(x, dim=1) for x in (q, bank))
    block = distance_block(q, bank, q_sq, bank_sq, metric, fold_norms)
    expected = METRICS["sqeuclidean" if euclidean else metric](q, bank)  # squared if euclidean
    np.testing.assert_allclose(block.numpy(), expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(squared_norms(bank, fold_norms).numpy(),
                               (bank * bank).sum(dim=1).numpy(), rtol=1e-14)


def test_validation():
    q, bank = _data()
    with pytest.raises(ValueError, match="n_neighbors"):
        nearest_neighbors(q, bank, bank.shape[0] + 1)
    with pytest.raises(ValueError, match="features"):
        nearest_neighbors(q, bank[:, :3])
    with pytest.raises(ValueError, match="2-D"):
        check_features(torch.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        check_features(torch.zeros(0, 2), "bank")
    assert check_features(np.arange(4).reshape(2, 2)).dtype == torch.float32
