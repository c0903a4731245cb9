"""Greedy k-center coreset against naive references (the search: test_knn_search.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mvtec_sklearn.detectors import _coreset
from mvtec_sklearn.detectors._coreset import greedy_coreset, k_center_greedy, random_projection


@pytest.fixture(params=["numpy", "torch"])
def namespace(request, monkeypatch):
    """Run the greedy loop in numpy (the CPU's) and in torch (other devices') on the CPU."""
    if request.param == "torch":
        monkeypatch.setattr(_coreset, "_array_namespace", lambda device: torch)
    return request.param


def naive_k_center(X, k, start):
    """Textbook greedy k-center: full distance recomputation, first argmax on ties."""
    selected = [start]
    min_dist = np.sqrt(((X - X[start]) ** 2).sum(axis=1))
    for _ in range(k - 1):
        i = int(np.argmax(min_dist))
        selected.append(i)
        min_dist = np.minimum(min_dist, np.sqrt(((X - X[i]) ** 2).sum(axis=1)))
    return selected, min_dist


def assert_matches_naive(X, k, start, **kwargs):
    """k_center_greedy selects as the textbook loop, with its distances and nearest centres."""
    indices, nearest, min_d2 = k_center_greedy(torch.from_numpy(X), k, start_index=start,
                                               **kwargs)
    expected, expected_min = naive_k_center(X, k, start)
    assert indices.tolist() == expected
    np.testing.assert_allclose(min_d2.sqrt().numpy(), expected_min, atol=1e-6)
    # nearest gives the position of each point's closest selected centre
    dist_to_sel = np.sqrt(((X[:, None] - X[expected][None]) ** 2).sum(-1))
    np.testing.assert_allclose(dist_to_sel[np.arange(len(X)), nearest.numpy()],
                               dist_to_sel.min(1), atol=1e-6)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 120),
    d=st.integers(1, 12),
    frac=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**31 - 1),
    chunk=st.integers(1, 64),
    clustered=st.booleans(),
)
def test_k_center_greedy_is_exact(namespace, n, d, frac, seed, chunk, clustered):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if clustered:  # tight clusters make the triangle-inequality pruning skip most points
        X = rng.normal(size=(5, d))[rng.integers(0, 5, n)] * 10 + 0.1 * X
    assert_matches_naive(X, max(1, int(frac * n)), int(rng.integers(n)), chunk_size=chunk)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(2, 200),
    d=st.integers(65, 96),
    frac=st.floats(0.01, 0.5),
    seed=st.integers(0, 2**31 - 1),
    texture=st.booleans(),
)
def test_k_center_greedy_with_principal_bound_is_exact(namespace, n, d, frac, seed,
                                                       texture):
    """Above 64 features the principal-subspace lower bound prunes; nothing changes."""
    rng = np.random.default_rng(seed)
    if texture:  # one diffuse blob, as texture patches: the triangle test rarely prunes
        X = rng.normal(size=(n, d)) * np.linspace(3.0, 0.1, d)
    else:
        X = rng.normal(size=(6, d))[rng.integers(0, 6, n)] * 10 + 0.1 * rng.normal(size=(n, d))
    assert_matches_naive(X, max(1, int(frac * n)), int(rng.integers(n)))


def test_greedy_coreset_ratio_projection_and_determinism():
    X = torch.randn(500, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    idx, nearest = greedy_coreset(X, 1.0, random_state=0)
    assert torch.equal(idx, torch.arange(500)) and torch.equal(nearest, torch.arange(500))
    a, _ = greedy_coreset(X, 0.1, random_state=3)
    b, _ = greedy_coreset(X, 0.1, random_state=3)
    c, _ = greedy_coreset(X, 0.1, random_state=4)
    assert a.shape == (50,) and torch.equal(a, b) and not torch.equal(a, c)
    assert len(set(a.tolist())) == 50
    # the selection is the exact greedy on the seeded projection
    rng = np.random.RandomState(3)
    projected = random_projection(X, 128, random_state=rng)
    start = rng.randint(500)
    expected, _ = naive_k_center(projected.numpy(), 50, start)
    assert a[0] == start
    assert a.tolist() == expected
    # projection_dim=None selects on the features themselves
    d, _ = greedy_coreset(X, 0.02, projection_dim=None, random_state=0)
    start = np.random.RandomState(0).randint(500)
    assert d.tolist() == naive_k_center(X.numpy(), 10, start)[0]
    assert greedy_coreset(X[:3], 0.01, random_state=0)[0].shape == (1,)
    with pytest.raises(ValueError, match="coreset_ratio"):
        greedy_coreset(X, 0.0)


def test_random_projection_preserves_distances_roughly():
    X = torch.randn(50, 2000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    P = random_projection(X, 512, random_state=0)
    assert P.shape == (50, 512)
    ratio = torch.cdist(P, P)[~torch.eye(50, dtype=bool)] / torch.cdist(X, X)[~torch.eye(50,
                                                                                       dtype=bool)]
    assert 0.8 < float(ratio.min()) and float(ratio.max()) < 1.2
    assert random_projection(X[:, :10], 128).shape == (50, 10)


def test_k_center_validation():
    with pytest.raises(ValueError, match="n_centers"):
        k_center_greedy(torch.zeros(3, 2), 4)
    with pytest.raises(ValueError, match="2-D"):
        k_center_greedy(torch.zeros(3), 1)
