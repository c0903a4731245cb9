"""Bootstrap intervals, the paired test, per-defect-type AUROC: references and invariances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from mvtec_sklearn.metrics import (
    bootstrap_ci,
    image_auroc,
    paired_bootstrap_test,
    per_defect_type_auroc,
    pixel_auroc,
)
from tests._data import labels_and_scores

FAST = settings(max_examples=30, deadline=None)


@FAST
@given(labels_and_scores(min_size=4, max_size=30, bound=20), st.integers(0, 1000))
def test_ci_invariant_to_increasing_transform_and_brackets_resamples(data, seed):
    y, s = data
    ci = bootstrap_ci(image_auroc, y, s, n_resamples=50, random_state=seed)
    again = bootstrap_ci(image_auroc, y, np.exp(s / 5.0) + 3.0, n_resamples=50, random_state=seed)
    assert ci == pytest.approx(again)
    assert ci.estimate == pytest.approx(roc_auc_score(y, s))
    assert 0.0 <= ci.low <= ci.high <= 1.0


@FAST
@given(labels_and_scores(min_size=4, max_size=30, bound=20), st.integers(0, 1000))
def test_paired_test_antisymmetric_and_null_on_itself(data, seed):
    y, s = data
    other = -s + np.arange(s.size) % 3
    ab = paired_bootstrap_test(image_auroc, y, s, other, n_resamples=50, random_state=seed)
    ba = paired_bootstrap_test(image_auroc, y, other, s, n_resamples=50, random_state=seed)
    assert ab.difference == pytest.approx(-ba.difference)
    assert (ab.low, ab.high) == pytest.approx((-ba.high, -ba.low))
    assert ab.pvalue == pytest.approx(ba.pvalue)
    assert ab.difference == pytest.approx(roc_auc_score(y, s) - roc_auc_score(y, other))
    same = paired_bootstrap_test(image_auroc, y, s, s, n_resamples=50, random_state=seed)
    assert same == (0.0, 0.0, 0.0, 1.0)


@FAST
@given(labels_and_scores(min_size=4, max_size=30, bound=20), st.integers(0, 1000))
def test_resamples_keep_class_counts(data, seed):
    y, s = data
    seen = []

    def metric(labels, scores):
        seen.append(np.bincount(labels, minlength=2))
        return 0.0

    bootstrap_ci(metric, y, s, n_resamples=5, random_state=seed)
    assert all((counts == np.bincount(y, minlength=2)).all() for counts in seen)


def test_ci_coverage_narrows_with_more_images():
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 400):
        y = np.r_[np.zeros(n), np.ones(n)]
        s = rng.normal(size=2 * n) + y
        ci = bootstrap_ci(image_auroc, y, s, n_resamples=200, random_state=0)
        widths.append(ci.high - ci.low)
    assert widths[1] < widths[0] / 2


def test_paired_test_detects_a_real_difference_and_not_noise():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(60), np.ones(60)]
    good = rng.normal(size=120) + 2.5 * y
    poor = rng.normal(size=120) + 0.3 * y
    assert paired_bootstrap_test(image_auroc, y, good, poor, n_resamples=300,
                                 random_state=0).pvalue < 0.01
    twin = good + rng.normal(scale=1e-3, size=120)
    assert paired_bootstrap_test(image_auroc, y, good, twin, n_resamples=300,
                                 random_state=0).pvalue > 0.05


def test_pixel_metric_resamples_whole_images():
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 16, 16), bool)
    masks[3:, 4:8, 4:8] = True
    maps = rng.uniform(size=masks.shape) + masks
    y = masks.any(axis=(1, 2)).astype(int)
    ci = bootstrap_ci(lambda labels, m, a: pixel_auroc(m, a), y, masks, maps, n_resamples=20,
                      random_state=0)
    assert ci.estimate == pytest.approx(pixel_auroc(masks, maps))
    assert ci.low <= ci.high


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="0 .normal. and 1"):
        bootstrap_ci(image_auroc, [1, 2, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        bootstrap_ci(image_auroc, [0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(image_auroc, [0, 1], [0.1, 0.2], n_resamples=0)


@FAST
@given(labels_and_scores(min_size=4, max_size=30, bound=20), st.integers(1, 3))
def test_per_defect_type_auroc_matches_sklearn_on_subsets(data, n_types):
    y, s = data
    types = np.where(y == 1, np.array([f"t{i % n_types}" for i in range(y.size)]), "good")
    table = per_defect_type_auroc(y, s, types)
    assert list(table.index) == sorted(set(types[y == 1]))
    for name, value in table.items():
        keep = (y == 0) | (types == name)
        assert value == pytest.approx(roc_auc_score(y[keep], s[keep]))
    if len(table) == 1:
        assert table.iloc[0] == pytest.approx(image_auroc(y, s))
