"""Classical outlier detectors on images: OCSVM, Isolation Forest, kNN and LOF,
on raw pixels (+ PCA) and on ResNet-18 features.

Every model is a plain scikit-learn pipeline ``featurizer -> detector``, fitted on
the good training images of one category and evaluated on its test images with
the image AUROC of the anomaly score ``-score_samples`` (which
:func:`mvtec_sklearn.metrics.anomaly_scores` computes for any detector).

The ResNet runs with random weights by default so that the example works
offline; pass ``--weights DEFAULT`` once torchvision's ImageNet file is in the
torch cache (see the installation guide) for meaningful deep features.

Run ``python examples/classical_detectors.py [--root MVTEC_FOLDER] [--category bottle]``;
``--quick`` uses the smallest settings (a few seconds).
"""

from __future__ import annotations

import argparse

import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.svm import OneClassSVM

from mvtec_sklearn.datasets import load_mvtec, synthetic_root
from mvtec_sklearn.detectors import KNNDetector
from mvtec_sklearn.features import ImageLoader, ResNetFeaturizer
from mvtec_sklearn.metrics import anomaly_scores, aupr, image_auroc


def detectors(n_neighbors=5, random_state=0):
    """The four detectors, unfitted."""
    return {
        "ocsvm": OneClassSVM(nu=0.1, gamma="scale"),
        "iforest": IsolationForest(n_estimators=100, random_state=random_state),
        "knn": KNNDetector(n_neighbors=n_neighbors, device="cpu"),
        "lof": LocalOutlierFactor(n_neighbors=n_neighbors, novelty=True),
    }


def main(argv=None):
    """Run the example; return a DataFrame of image AUROC / AUPR per (input, detector)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MVTec AD folder (default: synthetic data)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--weights", default=None, help="ResNet weights: None (random) or DEFAULT")
    parser.add_argument("--image-size", type=int, default=None, help="ResNet input size (default 224, quick 64)")
    parser.add_argument("--quick", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)

    root = args.root or synthetic_root(categories=[args.category], image_size=64,
                                       **(dict(n_train=10, n_test_good=4, n_test_defect=6) if args.quick else {}))
    train = load_mvtec(root, args.category, split="train")
    test = load_mvtec(root, args.category, split="test")
    image_size = args.image_size or (64 if args.quick else 224)
    n_neighbors = 3 if args.quick else 5

    # Compute each featurizer's output once and share it between the four detectors;
    # make_pipeline(featurizer, detector) is the same model as one estimator.
    featurizers = {
        "pixels + PCA": make_pipeline(ImageLoader(image_size=32), PCA(n_components=0.95, svd_solver="full")),
        "ResNet-18": ResNetFeaturizer(weights=args.weights, image_size=image_size, random_state=0),
    }
    rows = []
    for input_name, featurizer in featurizers.items():
        X_train = featurizer.fit_transform(train.paths)
        X_test = featurizer.transform(test.paths)
        for name, detector in detectors(n_neighbors).items():
            detector.fit(X_train)
            scores = anomaly_scores(detector, X_test)
            rows.append({"input": input_name, "detector": name,
                         "image_auroc": image_auroc(test.target, scores), "aupr": aupr(test.target, scores)})
    results = pd.DataFrame(rows)
    print(f"{args.category}: {len(train.paths)} training images, {len(test.paths)} test images "
          f"({int(test.target.sum())} anomalous); ResNet weights={args.weights}")
    print(results.pivot(index="detector", columns="input", values="image_auroc").round(3).to_string())
    return results


if __name__ == "__main__":
    main()
