"""Use mvtec_sklearn from your own project, after ``pip install mvtec-sklearn``.

Everything here goes through the installed package's public API only: build
a scikit-learn pipeline from a featurizer and a detector, fit it on good images,
pick an alarm threshold, save the fitted model with joblib and load it back
(for instance in an inspection service), then score new images. Your own
images work the same way: any list of file paths, or an array (n, H, W[, C]).

Only load model files you produced yourself or got from a trusted source:
unpickling runs code.

Run it from any folder: ``python use_from_another_project.py [--root MVTEC_FOLDER]``;
``--quick`` uses the smallest settings (a few seconds).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import joblib
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mvtec_sklearn.datasets import load_mvtec, synthetic_root
from mvtec_sklearn.detectors import KNNDetector
from mvtec_sklearn.features import HandcraftedFeaturizer
from mvtec_sklearn.metrics import anomaly_scores, image_auroc, precision_recall_at, select_threshold


def main(argv=None):
    """Run the example; return the test AUROC of the reloaded model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MVTec AD folder (default: synthetic data)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--model-file", default=None, help="where to save the model (default: a temporary file)")
    parser.add_argument("--quick", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)

    root = args.root or synthetic_root(categories=[args.category], image_size=64,
                                       **(dict(n_train=10, n_test_good=4, n_test_defect=6) if args.quick else {}))
    train = load_mvtec(root, args.category, split="train")
    test = load_mvtec(root, args.category, split="test")

    model = make_pipeline(HandcraftedFeaturizer(image_size=64), StandardScaler(),
                          KNNDetector(n_neighbors=3, device="cpu"))
    model.fit(train.paths)

    # a threshold on the anomaly score (-score_samples), chosen for F1 on labelled data
    scores = anomaly_scores(model, test.paths)
    threshold = select_threshold(test.target, scores, method="f1")
    precision, recall = precision_recall_at(test.target, scores, threshold)
    print(f"threshold {threshold:.3f}: precision {precision:.2f}, recall {recall:.2f}")

    model_file = args.model_file or os.path.join(tempfile.mkdtemp(), "detector.joblib")
    joblib.dump({"model": model, "threshold": threshold}, model_file)

    saved = joblib.load(model_file)          # trusted file: we wrote it ourselves
    reloaded_scores = anomaly_scores(saved["model"], test.paths)
    assert np.array_equal(reloaded_scores, scores), "the reloaded model scores differently"
    alarms = reloaded_scores >= saved["threshold"]
    auroc = image_auroc(test.target, reloaded_scores)
    print(f"reloaded from {model_file}: image AUROC {auroc:.3f}, {int(alarms.sum())} of {len(alarms)} "
          "test images flagged")
    return auroc


if __name__ == "__main__":
    main()
