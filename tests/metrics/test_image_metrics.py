"""Image metrics: against scikit-learn, invariances (hypothesis), edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from mvtec_sklearn.metrics import aupr, f1_max, image_auroc, precision_recall_at, select_threshold
from tests._data import labels_and_scores

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(labels_and_scores())
def test_match_sklearn(data):
    y, s = data
    assert image_auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert aupr(y, s) == pytest.approx(average_precision_score(y, s))


@FAST
@given(labels_and_scores(), st.sampled_from(["affine", "exp", "cube"]))
def test_invariant_to_strictly_increasing_transforms(data, transform):
    y, s = data
    t = {"affine": lambda v: 3.0 * v + 7.0, "exp": lambda v: np.exp(v / 10.0), "cube": lambda v: v**3}[transform](s)
    assert image_auroc(y, t) == pytest.approx(image_auroc(y, s))
    assert aupr(y, t) == pytest.approx(aupr(y, s))
    assert f1_max(y, t)[0] == pytest.approx(f1_max(y, s)[0])


@FAST
@given(labels_and_scores(), st.randoms(use_true_random=False))
def test_invariant_to_sample_permutation(data, rnd):
    y, s = data
    perm = np.arange(len(y))
    rnd.shuffle(perm)
    assert image_auroc(y[perm], s[perm]) == pytest.approx(image_auroc(y, s))
    assert aupr(y[perm], s[perm]) == pytest.approx(aupr(y, s))
    assert f1_max(y[perm], s[perm]) == pytest.approx(f1_max(y, s))


@FAST
@given(labels_and_scores())
def test_swapping_classes_or_negating_scores_mirrors_auroc(data):
    y, s = data
    assert image_auroc(1 - y, s) == pytest.approx(1.0 - image_auroc(y, s))
    assert image_auroc(y, -s) == pytest.approx(1.0 - image_auroc(y, s))


@FAST
@given(labels_and_scores(), st.floats(-100, 100))
def test_constant_scores_give_half_auroc(data, value):
    y, _ = data
    assert image_auroc(y, np.full(len(y), value)) == 0.5


@FAST
@given(labels_and_scores())
def test_f1_max_is_the_best_f1_over_all_thresholds(data):
    y, s = data
    best, threshold = f1_max(y, s)
    brute = max(f1_score(y, (s >= t).astype(int)) for t in np.unique(s))
    assert best == pytest.approx(brute)
    assert f1_score(y, (s >= threshold).astype(int)) == pytest.approx(best)
    precision, recall = precision_recall_at(y, s, threshold)
    assert 2 * precision * recall / (precision + recall) == pytest.approx(best)


@FAST
@given(labels_and_scores(), st.integers(-55, 55))
def test_precision_recall_at_counts(data, threshold):
    y, s = data
    flagged = s >= threshold
    precision, recall = precision_recall_at(y, s, threshold)
    tp = np.sum(flagged & (y == 1))
    assert precision == pytest.approx(tp / flagged.sum() if flagged.any() else 0.0)
    assert recall == pytest.approx(tp / np.sum(y == 1))


@FAST
@given(labels_and_scores(), st.floats(0.0, 1.0))
def test_select_threshold_by_fpr_is_lowest_threshold_within_target(data, target):
    y, s = data
    threshold = select_threshold(y, s, method="fpr", target_fpr=target)
    normals = s[y == 0]
    assert np.mean(normals >= threshold) <= target
    lower = s[s < threshold]
    if lower.size:  # the next lower candidate would exceed the target
        assert np.mean(normals >= lower.max()) > target


def test_select_threshold_by_f1_is_f1_max_threshold():
    y = np.array([0, 0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.5, 0.4, 0.3, 0.9, 0.8])
    assert select_threshold(y, s) == f1_max(y, s)[1] == 0.4
    assert select_threshold(y, s, method="fpr", target_fpr=0.0) == 0.8


def test_select_threshold_can_flag_nothing():
    # the highest score is a normal one: no finite threshold reaches fpr 0
    assert select_threshold([1, 0], [0.1, 0.9], method="fpr", target_fpr=0.0) == np.inf


def test_bool_labels_equal_int_labels():
    y = np.array([0, 1, 0, 1, 1])
    s = np.array([0.3, 0.6, 0.1, 0.2, 0.9])
    assert image_auroc(y.astype(bool), s) == image_auroc(y, s)
    assert f1_max(y.astype(bool), s) == f1_max(y, s)


@pytest.mark.parametrize("func", [image_auroc, aupr, f1_max, select_threshold])
@pytest.mark.parametrize(("y", "match"), [([0, 0, 0], "only normal"), ([1, 1, 1], "only anomalous")])
def test_one_class_labels_raise(func, y, match):
    with pytest.raises(ValueError, match=match):
        func(y, [0.1, 0.2, 0.3])


def test_precision_recall_at_needs_anomalies_only():
    assert precision_recall_at([1, 1], [0.2, 0.8], 0.5) == (1.0, 0.5)
    with pytest.raises(ValueError, match="only normal"):
        precision_recall_at([0, 0], [0.2, 0.8], 0.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_raise(bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        image_auroc([0, 1, 1], [0.1, bad, 0.3])


def test_predict_style_labels_are_refused_with_a_hint():
    with pytest.raises(ValueError, match=r"labels == -1"):
        image_auroc([1, -1, 1], [0.1, 0.9, 0.3])


def test_other_labels_and_shapes_raise():
    with pytest.raises(ValueError, match="0 \\(normal\\) and 1"):
        aupr([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(normal\\) and 1"):
        aupr(["good", "bad"], [0.1, 0.2])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        image_auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        image_auroc([], [])
