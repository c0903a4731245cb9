"""delong_test against a direct O(m n) computation of DeLong's covariance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mvtec_sklearn.metrics import delong_test


def _direct(y, a, b):
    """DeLong et al. (1988) written out: kernel matrices, placements, covariance."""
    def placements(s):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (v10a, v01a), (v10b, v01b) = placements(a), placements(b)
    m, n = int((y == 1).sum()), int((y == 0).sum())
    cov = np.cov([v10a, v10b]) / m + np.cov([v01a, v01b]) / n
    return v10a.mean() - v10b.mean(), cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n_neg=st.integers(2, 25), n_pos=st.integers(2, 25))
def test_matches_the_direct_computation_and_sklearn_auroc(data, n_neg, n_pos):
    # few distinct values, so that ties within and across classes are common
    values = st.lists(st.integers(0, 6), min_size=n_neg + n_pos, max_size=n_neg + n_pos)
    a, b = (np.array(data.draw(values), dtype=float) for _ in range(2))
    y = np.r_[np.zeros(n_neg, int), np.ones(n_pos, int)]
    result = delong_test(y, a, b)
    difference, variance = _direct(y, a, b)
    assert result.difference == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert result.difference == pytest.approx(difference, abs=1e-12)
    if variance > 1e-12:
        se = np.sqrt(variance)
        assert result.pvalue == pytest.approx(2 * norm.sf(abs(difference) / se), abs=1e-9)
        assert result.high - result.low == pytest.approx(2 * norm.ppf(0.975) * se, abs=1e-9)
    swapped = delong_test(y, b, a)
    assert swapped.difference == pytest.approx(-result.difference)
    assert swapped.pvalue == pytest.approx(result.pvalue)


def test_identical_models_and_a_clear_winner():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(40), np.ones(40)]
    good = rng.normal(size=80) + 2 * y
    same = delong_test(y, good, good)
    assert same.difference == 0 and same.pvalue == 1.0
    clear = delong_test(y, good, rng.normal(size=80), confidence_level=0.9)
    assert clear.difference > 0 and clear.pvalue < 1e-3 and clear.low > 0


def test_errors_name_the_problem():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="finite anomaly scores"):
        delong_test(y, [0.1, np.nan, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError):
        delong_test(y, [0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError):
        delong_test([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])
