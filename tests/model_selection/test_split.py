"""NormalOnlyKFold and normal_only_train_test_split guarantees."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mvtec_sklearn.detectors import KNNDetector
from mvtec_sklearn.model_selection import NormalOnlyKFold, normal_only_train_test_split


@st.composite
def labels_and_splitter(draw):
    n_splits = draw(st.integers(2, 5))
    n_normal = draw(st.integers(n_splits, 30))
    n_anomalous = draw(st.integers(n_splits, 15))
    y = np.array([0] * n_normal + [1] * n_anomalous)
    y = y[draw(st.permutations(range(len(y))))]
    shuffle = draw(st.booleans())
    random_state = draw(st.integers(0, 2**16)) if shuffle else None
    return y, NormalOnlyKFold(n_splits, shuffle=shuffle, random_state=random_state)


@settings(max_examples=80, deadline=None)
@given(labels_and_splitter())
def test_split_guarantees(data):
    y, cv = data
    X = np.zeros((len(y), 2))
    splits = list(cv.split(X, y))
    assert len(splits) == cv.get_n_splits(X, y) == cv.n_splits
    tested = np.concatenate([test for _, test in splits])
    # the test folds partition the data: every sample is tested exactly once
    np.testing.assert_array_equal(np.sort(tested), np.arange(len(y)))
    normal_sizes, anomalous_sizes = [], []
    for train, test in splits:
        assert np.all(y[train] == 0)  # normal-only training
        assert np.intersect1d(train, test).size == 0  # the test normals are unseen
        assert (y[test] == 0).any() and (y[test] == 1).any()
        # every normal not tested here is trained on
        np.testing.assert_array_equal(np.union1d(train, test[y[test] == 0]), np.flatnonzero(y == 0))
        normal_sizes.append(np.sum(y[test] == 0))
        anomalous_sizes.append(np.sum(y[test] == 1))
    assert max(normal_sizes) - min(normal_sizes) <= 1
    assert max(anomalous_sizes) - min(anomalous_sizes) <= 1
    # a fixed random_state (or no shuffling) gives the same folds on every call
    for (train_a, test_a), (train_b, test_b) in zip(splits, cv.split(X, y)):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)


def test_unshuffled_folds_follow_the_original_order():
    y = [0, 1, 0, 0, 1, 0]
    folds = [(list(tr), list(te)) for tr, te in NormalOnlyKFold(2).split(y, y)]
    assert folds == [([3, 5], [0, 1, 2]), ([0, 2], [3, 4, 5])]


def test_shuffle_depends_on_random_state():
    y = np.r_[np.zeros(40, dtype=int), np.ones(10, dtype=int)]
    tests = [
        [tuple(te) for _, te in NormalOnlyKFold(2, shuffle=True, random_state=seed).split(y, y)] for seed in (0, 1)
    ]
    assert tests[0] != tests[1]


@pytest.mark.parametrize(
    ("y", "error", "match"),
    [
        (None, ValueError, "needs the labels y"),
        ([0, 0, 0, 1, 1, 1], ValueError, None),
        ([0, 0, 1, 1, 1, 1], ValueError, "at least 3 normal samples"),
        ([0, 0, 0, 0, 1, 1], ValueError, "at least 3 anomalous samples"),
        ([1, -1, 1, 1, -1, -1], ValueError, "0 \\(normal\\) and 1"),
        ([0, 0, 0, 1, 1], ValueError, "inconsistent numbers of samples"),
    ],
)
def test_split_errors(y, error, match):
    X = np.zeros((6, 1))
    cv = NormalOnlyKFold(3)
    if match is None:  # the valid case
        assert len(list(cv.split(X, y))) == 3
        return
    with pytest.raises(error, match=match):
        list(cv.split(X, y))


def test_constructor_errors():
    with pytest.raises(ValueError, match="n_splits"):
        NormalOnlyKFold(1)
    with pytest.raises(ValueError, match="shuffle is False"):
        NormalOnlyKFold(3, random_state=0)
    with pytest.raises(TypeError, match="shuffle"):
        NormalOnlyKFold(3, shuffle="yes")
    assert repr(NormalOnlyKFold(3)) == "NormalOnlyKFold(n_splits=3, random_state=None, shuffle=False)"


def test_paths_and_pipelines_in_grid_search():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(30, 4)), rng.normal(3, 1, size=(9, 4))])
    y = np.r_[np.zeros(30, dtype=int), np.ones(9, dtype=int)]
    paths = [f"img_{i:03d}.png" for i in range(len(y))]
    cv = NormalOnlyKFold(3, shuffle=True, random_state=0)
    # lists of paths split like arrays
    for (tr_a, te_a), (tr_b, te_b) in zip(cv.split(paths, y), cv.split(X, y)):
        np.testing.assert_array_equal(tr_a, tr_b)
        np.testing.assert_array_equal(te_a, te_b)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), KNNDetector(device="cpu")),
        {"knndetector__n_neighbors": [1, 5]},
        scoring="image_auroc",
        cv=cv,
        refit=False,
    ).fit(X, y)
    assert search.best_score_ > 0.9
    # the partition makes cross_val_predict valid (it refuses non-partitions)
    labels = cross_val_predict(KNNDetector(device="cpu"), X, y, cv=cv)
    assert set(labels) <= {-1, 1} and labels.shape == (len(y),)


def test_train_test_split_arrays():
    X = np.arange(20).reshape(10, 2)
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    X_train, X_test, y_train, y_test = normal_only_train_test_split(X, y, test_size=0.25, random_state=0)
    assert len(X_train) == 6 and len(X_test) == 4
    np.testing.assert_array_equal(y_train, 0)
    assert y_test.sum() == 2  # every anomaly is in the test set
    # no sample on both sides, and together they are all the samples
    rows = {tuple(r) for r in X_train} | {tuple(r) for r in X_test}
    assert len(rows) == 10
    # the same seed gives the same split
    again = normal_only_train_test_split(X, y, test_size=0.25, random_state=0)
    np.testing.assert_array_equal(again[0], X_train)


def test_train_test_split_keeps_containers():
    paths = [f"{i}.png" for i in range(6)]
    X_train, X_test, y_train, y_test = normal_only_train_test_split(
        paths, [0, 0, 0, 1, 0, 1], test_size=1, shuffle=False
    )
    assert X_train == ["0.png", "1.png", "2.png"] and X_test == ["3.png", "4.png", "5.png"]
    assert y_train == [0, 0, 0] and y_test == [1, 0, 1]
    frame = pd.DataFrame({"a": range(6)})
    X_train, X_test, _, _ = normal_only_train_test_split(frame, pd.Series([0, 0, 0, 1, 0, 1]), test_size=2)
    assert isinstance(X_train, pd.DataFrame) and len(X_train) == 2 and len(X_test) == 4


def test_train_test_split_errors():
    with pytest.raises(ValueError, match="needs anomalous samples"):
        normal_only_train_test_split(np.zeros((4, 1)), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="at least 2 normal"):
        normal_only_train_test_split(np.zeros((3, 1)), [0, 1, 1])
    with pytest.raises(ValueError, match="test_size"):
        normal_only_train_test_split(np.zeros((4, 1)), [0, 0, 1, 1], test_size=1.5)
