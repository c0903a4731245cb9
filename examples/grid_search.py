"""Tune a deep-feature One-Class SVM with GridSearchCV and normal-only cross-validation.

The pipeline is plain scikit-learn: a ResNet featurizer followed by
:class:`~sklearn.svm.OneClassSVM`. :class:`~mvtec_sklearn.model_selection.NormalOnlyKFold`
trains every fold on normal images only and tests it on unseen normal and
anomalous images; ``scoring="image_auroc"`` turns the detector's
``score_samples`` into an anomaly score and computes the image AUROC.

``Pipeline(memory=...)`` caches the featurizer's ``fit_transform``: the
training features of each fold are computed once and reused by every
hyper-parameter candidate (scikit-learn caches only the fitting side; the
test fold is transformed again for each candidate).

Two points of protocol:

- The pipeline is wrapped in :class:`~mvtec_sklearn.model_selection.NormalOnlyFit`:
  after the search, ``GridSearchCV`` refits the best candidate on all of ``X``,
  and the wrapper drops the anomalous images from that refit, so
  ``best_estimator_`` is trained on normal images only (a search with
  ``NormalOnlyKFold`` and ``refit=True`` around a bare pipeline raises an error).
- The cross-validated score of the winning candidate is an optimistic estimate
  (it was used to choose it); evaluate on data left out of the search for an
  unbiased one.

Run ``python examples/grid_search.py`` (synthetic data, random ResNet weights,
about a minute on a laptop CPU) or pass ``--root`` to use a real MVTec AD folder
and ``--weights DEFAULT`` for ImageNet weights.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.svm import OneClassSVM

from mvtec_sklearn.datasets import load_mvtec, synthetic_root
from mvtec_sklearn.features import ResNetFeaturizer
from mvtec_sklearn.model_selection import NormalOnlyFit, NormalOnlyKFold

PARAM_GRID = {"ocsvm__nu": [0.05, 0.2], "ocsvm__gamma": ["scale", 1e-3]}


def main(
    root=None,
    category="bottle",
    *,
    image_size=64,
    weights=None,
    n_splits=3,
    param_grid=None,
    cache_dir=None,
    n_jobs=None,
    verbose=True,
):
    """Run the search; return the fitted ``GridSearchCV`` and the final pipeline.

    Parameters
    ----------
    root : str or None
        An MVTec AD-format folder; ``None`` generates (once) a synthetic one.
    category : str
        The category to tune on.
    image_size : int
        Featurizer input size in pixels.
    weights : str or None
        ResNet weights; ``None`` is random initialisation (no download).
    n_splits : int
        Folds of :class:`NormalOnlyKFold`.
    param_grid : dict or None
        Grid over the ``ocsvm`` step; ``None`` uses :data:`PARAM_GRID`.
    cache_dir : str or None
        Folder for the ``Pipeline(memory=...)`` cache; ``None`` uses a
        temporary folder removed at the end.
    n_jobs : int or None
        Parallel candidates/folds in ``GridSearchCV``.
    verbose : bool
        Print the results table.

    Returns
    -------
    search : GridSearchCV
        Its parameter names carry the wrapper's ``estimator__`` prefix.
    final : Pipeline
        The best parameters, fitted on every normal image of the search.
    """
    if root is None:
        root = synthetic_root(categories=[category], image_size=image_size)
    train = load_mvtec(root, category, split="train")
    test = load_mvtec(root, category, split="test")
    # Pool the normal training images with the test images: the splitter keeps
    # the anomalies out of every training fold.
    X = list(train.paths) + list(test.paths)
    y = np.concatenate([np.zeros(len(train.paths), dtype=int), np.asarray(test.target, dtype=int)])

    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(
            [
                ("features", ResNetFeaturizer(weights=weights, image_size=image_size, random_state=0)),
                ("ocsvm", OneClassSVM()),
            ],
            memory=cache_dir if cache_dir is not None else tmp,
        )
        grid = PARAM_GRID if param_grid is None else param_grid
        search = GridSearchCV(
            NormalOnlyFit(pipe),
            {f"estimator__{name}": values for name, values in grid.items()},
            scoring="image_auroc",
            cv=NormalOnlyKFold(n_splits, shuffle=True, random_state=0),
            n_jobs=n_jobs,
        ).fit(X, y)
        # the refit on the normal images of X, without the temporary cache folder
        final = search.best_estimator_.estimator_.set_params(memory=None)

    if verbose:
        table = pd.DataFrame(search.cv_results_)[["params", "mean_test_score", "std_test_score", "rank_test_score"]]
        print(f"category={category!r}: {len(train.paths)} train, {len(test.paths)} test images")
        print(table.sort_values("rank_test_score").to_string(index=False))
        print(f"best image AUROC (cross-validated): {search.best_score_:.3f} with {search.best_params_}")
    return search, final


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MVTec AD-format folder (default: synthetic data)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--weights", default=None, help="ResNet weights, e.g. DEFAULT (default: random)")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    main(
        args.root,
        args.category,
        image_size=args.image_size,
        weights=args.weights,
        cache_dir=args.cache_dir,
        n_jobs=args.n_jobs,
    )
