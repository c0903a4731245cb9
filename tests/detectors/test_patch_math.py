"""PatchCore's and PaDiM's tensor math against naive numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.covariance import ledoit_wolf

from mvtec_sklearn.detectors._nn._patch import (
    gaussian_whitening,
    ledoit_wolf_covariance,
    mahalanobis_distances,
    patch_embeddings,
    pooling_matrix,
    reweighted_scores,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_pooling_matrix_pools_each_layer_then_all():
    v = torch.rand(12, generator=_gen(), dtype=torch.float64)
    pooled = v.float() @ pooling_matrix((4, 8), 2)
    # two layers, dim 2: each layer's mean, then the mean of each layer's value
    np.testing.assert_allclose(pooled.numpy(), [v[:4].mean(), v[4:].mean()], rtol=1e-6)


def test_patch_embeddings_are_image_major_rows():
    feats = torch.rand(2, 6, 3, 4, generator=_gen())
    rows = patch_embeddings(feats, None, torch.empty(2 * 3 * 4, 6))
    assert torch.equal(rows, feats.permute(0, 2, 3, 1).reshape(-1, 6))
    pool = pooling_matrix((2, 4), 3)
    assert torch.allclose(patch_embeddings(feats, pool, torch.empty(24, 3)), rows @ pool)


@pytest.mark.parametrize("n_neighbors", [1, 3])
def test_reweighted_scores_follow_eq_7(n_neighbors):
    bank = torch.rand(10, 4, generator=_gen(1), dtype=torch.float64)
    queries = torch.rand(3, 4, generator=_gen(2), dtype=torch.float64)
    d = torch.cdist(queries, bank)
    s_star, m_star = d.min(dim=1)
    scores = reweighted_scores(queries, s_star, m_star, bank, n_neighbors)
    expected = []
    for i in range(3):
        if n_neighbors == 1:
            expected.append(float(s_star[i]))
            continue
        support = torch.cdist(bank[m_star[i]][None], bank)[0].argsort()[:n_neighbors]
        w = 1 - np.exp(float(s_star[i])) / np.exp(d[i, support].numpy()).sum()
        expected.append(w * float(s_star[i]))
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-9)


def test_whitening_and_mahalanobis_match_numpy():
    feats = torch.randn(3, 15, 4, generator=_gen(3))  # 3 positions, 15 images, 4 features
    whitening = gaussian_whitening(feats, 0.01)
    lw = gaussian_whitening(feats, "ledoit_wolf")
    mean = feats.mean(dim=1)
    x = torch.randn(2, 4, 3, generator=_gen(4))  # 2 images, 4 features, 3 positions
    dist = mahalanobis_distances(x, mean, whitening)
    assert dist.shape == (2, 3)
    for pos in range(3):
        data = feats[pos].double().numpy()
        inv = np.linalg.inv(np.cov(data, rowvar=False) + 0.01 * np.eye(4))
        W = whitening[pos].double().numpy()
        np.testing.assert_allclose(W.T @ W, inv, rtol=1e-4, atol=1e-5)
        W = lw[pos].double().numpy()
        np.testing.assert_allclose(np.linalg.inv(W.T @ W), ledoit_wolf(data)[0], rtol=1e-4,
                                   atol=1e-5)
        diff = x[:, :, pos].double().numpy() - data.mean(axis=0)
        naive = np.sqrt(np.einsum("bi,ij,bj->b", diff, inv, diff))
        np.testing.assert_allclose(dist[:, pos].numpy(), naive, rtol=1e-4)


def test_ledoit_wolf_covariance_matches_sklearn_per_set():
    X = torch.randn(2, 20, 5, generator=_gen(5), dtype=torch.float64)
    cov, shrinkage = ledoit_wolf_covariance(X)
    for i in range(2):
        ref_cov, ref_shrink = ledoit_wolf(X[i].numpy())
        np.testing.assert_allclose(cov[i].numpy(), ref_cov, rtol=1e-10, atol=1e-12)
        assert float(shrinkage[i]) == pytest.approx(ref_shrink, rel=1e-10)


def test_singular_covariance_is_reported():
    with pytest.raises(ValueError, match="singular"):
        gaussian_whitening(torch.zeros(2, 5, 3), 0.0)
