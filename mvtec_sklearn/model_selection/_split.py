"""Cross-validation splitters whose training folds hold normal samples only."""

from __future__ import annotations

import sys
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import BaseCrossValidator, train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_consistent_length, column_or_1d

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pandas as pd
    from numpy.typing import ArrayLike, NDArray

__all__ = ["NormalOnlyKFold", "normal_only_train_test_split"]


def _check_anomaly_labels(y, caller):
    """0/1 (or bool) labels as an int array; a clear error when missing or malformed."""
    if y is None:
        raise ValueError(
            f"{caller} needs the labels y (0 = normal, 1 = anomalous) to keep anomalies "
            "out of the training folds; pass y, e.g. GridSearchCV(...).fit(X, y)."
        )
    y = column_or_1d(y, warn=True)
    labels = np.unique(y)
    if y.dtype.kind not in "biuf" or not np.isin(labels, [0, 1]).all():
        raise ValueError(
            f"{caller} expects y with 0 (normal) and 1 (anomalous) labels or booleans; "
            f"got labels {labels.tolist()}."
        )
    return y.astype(np.int64)


def _calling_search(splitter):
    """The hyper-parameter search (``GridSearchCV`` & co.) whose ``fit`` is splitting, if any.

    Found by walking up the call stack to a ``self`` whose ``cv`` is this very
    splitter and that has ``refit`` and ``estimator`` (every scikit-learn
    search); None when called by anything else (``cross_validate``, a loop).
    """
    frame = sys._getframe(1)
    for _ in range(60):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if (
            owner is not splitter
            and getattr(owner, "cv", None) is splitter
            and hasattr(owner, "refit")
            and hasattr(owner, "estimator")
        ):
            return owner
        frame = frame.f_back
    return None


def _check_search(splitter, y):
    """Refuse a search that would refit on anomalies; warn about inverted scorer names."""
    search = _calling_search(splitter)
    if search is None:
        return
    from mvtec_sklearn.metrics import warn_if_inverted_scoring

    from ._normal_only_fit import NormalOnlyFit

    warn_if_inverted_scoring(search.scoring, stacklevel=4)
    if search.refit is not False and not isinstance(search.estimator, NormalOnlyFit):
        name = type(search).__name__
        raise ValueError(
            f"{name}(refit={search.refit!r}) would refit the best {type(search.estimator).__name__} "
            f"on all of X, including its {int(np.sum(y == 1))} samples labelled anomalous. Wrap "
            f"the estimator: {name}(NormalOnlyFit(estimator), ...) refits on the normal samples "
            "only (search its parameters as estimator__<name>); or pass refit=False and fit the "
            "best parameters on normal samples yourself."
        )


class NormalOnlyKFold(BaseCrossValidator):
    """K-fold cross-validation that trains on normal samples only.

    The normal samples (``y == 0``) are split into ``n_splits`` folds, and so
    are the anomalous ones (``y == 1``). Split ``i`` trains on the normal
    samples outside normal fold ``i`` and tests on normal fold ``i`` plus
    anomalous fold ``i``. So every training set is normal-only, every test set
    holds unseen normal *and* anomalous samples, and the test sets partition
    the data (each sample is tested exactly once, as ``cross_val_predict``
    requires). Anomalous samples are never trained on.

    Works with anything ``GridSearchCV`` can index: arrays, DataFrames, lists
    of image paths, and with pipelines (only ``y`` is looked at).

    A search's refit fits on all of ``X``, anomalies included. So in a
    hyper-parameter search (``GridSearchCV``, ``RandomizedSearchCV``, ...),
    ``split`` raises ``ValueError`` unless the estimator is wrapped in
    :class:`NormalOnlyFit` (whose refit drops the anomalies) or
    ``refit=False``; and it warns when ``scoring`` is a scikit-learn name that
    inverts detector scores (``"roc_auc"``, ``"average_precision"``: they rank
    ``decision_function``, higher = more normal, as the score of class 1 =
    anomalous; use ``"image_auroc"``, ``"aupr"``).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2. Needs at least ``n_splits`` normal and
        ``n_splits`` anomalous samples.
    shuffle : bool, default=False
        Shuffle each class before splitting it into folds; otherwise folds are
        contiguous in the original order.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling (only with ``shuffle=True``). Pass an int for the
        same folds on every call to ``split``.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.model_selection import NormalOnlyKFold
    >>> y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    >>> for train, test in NormalOnlyKFold(3).split(np.zeros((9, 1)), y):
    ...     print(train, test)
    [2 3 4 5] [0 1 6]
    [0 1 4 5] [2 3 7]
    [0 1 2 3] [4 5 8]
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        shuffle: bool = False,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        if not isinstance(n_splits, Integral) or isinstance(n_splits, bool) or n_splits < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}.")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}.")
        if not shuffle and random_state is not None:
            raise ValueError(
                "Setting a random_state has no effect since shuffle is False; "
                "leave random_state=None or set shuffle=True."
            )
        self.n_splits: int = int(n_splits)
        self.shuffle: bool = shuffle
        self.random_state: int | np.random.RandomState | None = random_state

    def split(
        self, X: ArrayLike | Sequence[Any], y: ArrayLike | None = None, groups: None = None
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
        """Generate indices of normal-only training sets and mixed test sets.

        Parameters
        ----------
        X : array-like or sequence of shape (n_samples, ...)
            Samples (only their number is used).
        y : array-like of shape (n_samples,)
            0 = normal, 1 = anomalous (or bool). Required.
        groups : None
            Ignored, present for API compatibility.

        Yields
        ------
        train : ndarray of int
            Indices of normal samples, sorted.
        test : ndarray of int
            Indices of the held-out normal and anomalous samples, sorted.

        Raises
        ------
        ValueError
            In a search with ``refit`` whose estimator is not a
            :class:`NormalOnlyFit` (the refit would train on anomalies).
        """
        y = _check_anomaly_labels(y, type(self).__name__)
        check_consistent_length(X, y)
        _check_search(self, y)
        normal = np.flatnonzero(y == 0)
        anomalous = np.flatnonzero(y == 1)
        for kind, idx in (("normal", normal), ("anomalous", anomalous)):
            if idx.size < self.n_splits:
                raise ValueError(
                    f"NormalOnlyKFold(n_splits={self.n_splits}) needs at least {self.n_splits} "
                    f"{kind} samples (one per test fold), got {idx.size}."
                )
        if self.shuffle:
            rng = check_random_state(self.random_state)
            normal = rng.permutation(normal)
            anomalous = rng.permutation(anomalous)
        normal_folds = np.array_split(normal, self.n_splits)
        anomalous_folds = np.array_split(anomalous, self.n_splits)
        for i in range(self.n_splits):
            train = np.sort(np.concatenate([f for j, f in enumerate(normal_folds) if j != i]))
            test = np.sort(np.concatenate([normal_folds[i], anomalous_folds[i]]))
            yield train, test

    def get_n_splits(self, X: object = None, y: object = None, groups: object = None) -> int:
        """Number of splits.

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API compatibility.

        Returns
        -------
        int
            ``n_splits``.
        """
        return self.n_splits


@validate_params(
    {
        "y": ["array-like"],
        "test_size": [Interval(Real, 0, 1, closed="neither"), Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "shuffle": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def normal_only_train_test_split(
    X: ArrayLike | pd.DataFrame | Sequence[Any],
    y: ArrayLike,
    *,
    test_size: float | int = 0.25,
    random_state: int | np.random.RandomState | None = None,
    shuffle: bool = True,
) -> tuple[Any, Any, Any, Any]:
    """Split into a normal-only training set and a test set with every anomaly.

    Parameters
    ----------
    X : array-like, DataFrame or sequence of paths, of length n_samples
        Samples.
    y : array-like of shape (n_samples,)
        0 = normal, 1 = anomalous (or bool).
    test_size : float in (0, 1) or int, default=0.25
        Share (float) or number (int) of the *normal* samples held out for
        the test set. All anomalous samples go to the test set.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the normal samples.
    shuffle : bool, default=True
        Shuffle the normal samples before holding some out.

    Returns
    -------
    X_train, X_test, y_train, y_test
        Indexed like ``X`` and ``y`` (lists stay lists). ``y_train`` is all 0.

    Raises
    ------
    ValueError
        If ``y`` holds no anomalous sample, or too few normal samples to put
        at least one on each side.

    Examples
    --------
    >>> from mvtec_sklearn.model_selection import normal_only_train_test_split
    >>> X = ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png"]
    >>> y = [0, 0, 0, 0, 1, 1]
    >>> X_train, X_test, y_train, y_test = normal_only_train_test_split(
    ...     X, y, test_size=0.5, shuffle=False)
    >>> X_train, X_test, list(y_test)
    (['a.png', 'b.png'], ['c.png', 'd.png', 'e.png', 'f.png'], [0, 0, 1, 1])
    """
    labels = _check_anomaly_labels(y, "normal_only_train_test_split")
    check_consistent_length(X, labels)
    normal = np.flatnonzero(labels == 0)
    anomalous = np.flatnonzero(labels == 1)
    if anomalous.size == 0:
        raise ValueError("normal_only_train_test_split needs anomalous samples (label 1) in y; got none.")
    if normal.size < 2:
        raise ValueError(
            f"normal_only_train_test_split needs at least 2 normal samples (label 0), got {normal.size}."
        )
    train, test_normal = train_test_split(
        normal, test_size=test_size, random_state=random_state, shuffle=shuffle
    )
    test = np.concatenate([test_normal, anomalous])
    if not shuffle:
        train, test = np.sort(train), np.sort(test)
    return (
        _safe_indexing(X, train),
        _safe_indexing(X, test),
        _safe_indexing(y, train),
        _safe_indexing(y, test),
    )
