"""Cross-validation and refits that train on normal samples only.

:class:`NormalOnlyKFold` keeps anomalies out of every training fold;
:class:`NormalOnlyFit` wraps a detector so that a search's refit drops them too.

Importing this subpackage also imports :mod:`mvtec_sklearn.metrics`, which
registers the scorer names ``"image_auroc"``, ``"aupr"`` and ``"f1_max"`` with
scikit-learn, so that ``GridSearchCV(..., scoring="image_auroc",
cv=NormalOnlyKFold(3))`` works whichever of the two is imported.
"""

from .. import metrics  # noqa: F401  (registers the scorer names, see above)
from ._normal_only_fit import NormalOnlyFit
from ._split import NormalOnlyKFold, normal_only_train_test_split

__all__ = ["NormalOnlyFit", "NormalOnlyKFold", "normal_only_train_test_split"]
