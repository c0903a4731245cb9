"""Every private scikit-learn name the package relies on still exists and behaves as used.

scikit-learn may change its private names in any release. Each test here fails
with a message naming the private name and where the package uses it, so a new
scikit-learn release that drops one is caught here, not by a user.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pytest
import sklearn


def _fail(name, where, exc):
    pytest.fail(
        f"scikit-learn {sklearn.__version__} lacks or changed the private {name} that "
        f"mvtec_sklearn uses in {where}: {exc!r}",
        pytrace=False,
    )


def test_param_validation_constraints_and_validate_params():
    where = "every estimator's _parameter_constraints and metrics/model_selection functions"
    try:
        from sklearn.utils._param_validation import (
            HasMethods,
            Interval,
            Options,
            StrOptions,
            validate_params,
        )

        @validate_params({"k": [Interval(Integral, 1, None, closed="left")]},
                         prefer_skip_nested_validation=True)
        def f(k):
            return k

        assert f(3) == 3
        with pytest.raises(ValueError, match="'k' parameter"):
            f(0)
        assert StrOptions({"a"}).is_satisfied_by("a") and Options(int, {1}).is_satisfied_by(1)
        assert HasMethods(["fit"]).is_satisfied_by(sklearn.base.BaseEstimator) is False
        assert hasattr(f, "_skl_parameter_constraints")
    except (ImportError, AttributeError, TypeError, AssertionError) as exc:
        _fail("sklearn.utils._param_validation", where, exc)


def test_base_estimator_validate_params_and_fit_context():
    try:
        from sklearn.base import BaseEstimator, _fit_context
        from sklearn.utils._param_validation import StrOptions

        class Est(BaseEstimator):
            _parameter_constraints: dict = {"mode": [StrOptions({"a", "b"})]}

            def __init__(self, mode="a"):
                self.mode = mode

            @_fit_context(prefer_skip_nested_validation=True)
            def fit(self, X, y=None):
                self.fitted_ = True
                return self

        assert Est().fit(None).fitted_
        with pytest.raises(ValueError, match="'mode' parameter"):
            Est(mode="c").fit(None)
        with pytest.raises(ValueError, match="'mode' parameter"):
            Est(mode="c")._validate_params()
    except (ImportError, AttributeError, TypeError, AssertionError) as exc:
        _fail("sklearn.base._fit_context / BaseEstimator._validate_params",
              "detectors/_torch_base.py and every fit", exc)


def test_safe_indexing():
    try:
        from sklearn.utils import _safe_indexing

        assert _safe_indexing(["a", "b", "c"], np.array([0, 2])) == ["a", "c"]
        np.testing.assert_array_equal(_safe_indexing(np.arange(4), np.array([1, 3])), [1, 3])
    except (ImportError, AttributeError, TypeError, AssertionError) as exc:
        _fail("sklearn.utils._safe_indexing",
              "model_selection (normal_only_train_test_split, NormalOnlyFit)", exc)


def test_scorer_registry_and_scoring_constraints():
    where = "metrics/_scorers.py (registering scoring='image_auroc' with scikit-learn)"
    try:
        from sklearn import model_selection
        from sklearn.metrics import _scorer
        from sklearn.model_selection._search import BaseSearchCV
        from sklearn.utils._param_validation import StrOptions

        assert isinstance(_scorer._SCORERS, dict) and "roc_auc" in _scorer._SCORERS
        holders = [BaseSearchCV._parameter_constraints, _scorer.check_scoring._skl_parameter_constraints]
        holders += [
            getattr(model_selection, name)._skl_parameter_constraints
            for name in ("cross_validate", "cross_val_score", "learning_curve", "validation_curve",
                         "permutation_test_score")
        ]
        for constraints in holders:
            assert any(isinstance(c, StrOptions) and "roc_auc" in c.options for c in constraints["scoring"])
    except (ImportError, AttributeError, KeyError, TypeError, AssertionError) as exc:
        _fail("sklearn.metrics._scorer._SCORERS / scoring StrOptions constraints", where, exc)


def test_registered_scorer_names_work_end_to_end():
    """The registration's effect, whichever way scikit-learn stores it."""
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import OneClassSVM

    from mvtec_sklearn.model_selection import NormalOnlyKFold

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(20, 2)), rng.normal(5, 1, size=(6, 2))])
    y = np.r_[np.zeros(20, dtype=int), np.ones(6, dtype=int)]
    scores = cross_val_score(OneClassSVM(), X, y, scoring="image_auroc", cv=NormalOnlyKFold(2))
    assert scores.min() > 0.9
