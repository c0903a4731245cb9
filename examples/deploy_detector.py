"""Deploying a detector: fit, calibrate, save, predict on a folder, export.

The story of a user who has benchmarked PatchCore and now wants it on the line:

1. fit PatchCore on the good training images of one category, with the image
   threshold calibrated on held-out good images (5 % false alarms) and the
   mask threshold on pseudo-defects pasted into them
   (:class:`~mvtec_sklearn.model_selection.CalibratedThresholdDetector`);
2. save it with its metadata (:func:`~mvtec_sklearn.deploy.save_model`);
3. load it and score a folder of new images: ``scores.csv``, heatmap overlays
   and binary masks (:func:`~mvtec_sklearn.deploy.predict_images`);
4. export it to TorchScript (and ONNX when the ``export`` extra is installed)
   and check that the exported file scores like the estimator.

The same from the shell::

    mvtec-sklearn fit patchcore --root ROOT --category bottle --save model.joblib
    mvtec-sklearn predict model.joblib ROOT/bottle/test --out predictions
    mvtec-sklearn export model.joblib --out model.onnx

Run ``python examples/deploy_detector.py [--root MVTEC_FOLDER] [--category bottle] [--out DIR]``;
``--quick`` uses 64 px images and random backbone weights (seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile

import numpy as np
from sklearn.metrics import f1_score

from mvtec_sklearn.datasets import load_masks, load_mvtec, synthetic_root
from mvtec_sklearn.deploy import export_onnx, export_torchscript, load_model, predict_images, save_model
from mvtec_sklearn.detectors import PatchCoreDetector
from mvtec_sklearn.metrics import image_auroc
from mvtec_sklearn.model_selection import CalibratedThresholdDetector


def main(argv=None):
    """Run the example; return a dict of what was written and measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MVTec AD folder (default: synthetic data)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--image-size", type=int, default=None, help="default 128, quick 64")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="deploy_")
    size = args.image_size or (64 if args.quick else 128)

    root = args.root or synthetic_root(categories=[args.category], image_size=size,
                                       n_train=16, n_test_good=8, n_test_defect=16)
    train = load_mvtec(root, args.category, split="train")
    test = load_mvtec(root, args.category, split="test")

    # 1. fit + calibrate
    detector = PatchCoreDetector(backbone="resnet18" if args.quick else "efficientnet_lite0",
                                 weights=None if args.quick else "DEFAULT", layers=None,
                                 image_size=size, random_state=0)
    model = CalibratedThresholdDetector(detector, target_fpr=0.05, pixel_method="synthetic",
                                        random_state=0).fit(train.paths)
    print(f"image threshold {model.threshold_:.4g}, pixel threshold {model.pixel_threshold_:.4g}")

    # 2. save with metadata
    model_file = os.path.join(out, "model.joblib")
    meta = save_model(model, model_file, training_data=train.paths)
    print(f"saved {model_file}: trained on {meta['training']['n_images']} images, "
          f"versions {meta['versions']}")

    # 3. load and predict on a folder
    loaded = load_model(model_file)
    test_dir = os.path.join(root, args.category, "test")
    table = predict_images(loaded, [test_dir], os.path.join(out, "predictions"))
    print(table.head())
    flagged = table.decision == "anomalous"
    label = dict(zip(test.paths, test.target))
    truth = np.asarray([label[p] for p in table.path])
    print(f"{int(flagged.sum())} of {len(table)} images flagged; "
          f"image AUROC {image_auroc(truth, table.anomaly_score):.3f}")
    pred = loaded.predict_mask(test.paths)
    gt = load_masks(test.mask_paths, size=pred.shape[1:])
    pixel_f1 = float(f1_score(gt.ravel(), pred.ravel()))
    print(f"pixel F1 of the predicted masks: {pixel_f1:.3f}")

    # 4. export and check parity
    exported = {"torchscript": os.path.join(out, "model.pt")}
    export_torchscript(model, exported["torchscript"])
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        exported["onnx"] = os.path.join(out, "model.onnx")
        export_onnx(model, exported["onnx"])
    some = test.paths[:4]
    gaps = {}
    for fmt, path in exported.items():
        gaps[fmt] = float(np.abs(load_model(path).score_samples(some) - model.score_samples(some)).max())
        print(f"{fmt}: {path}, largest score difference {gaps[fmt]:.2e}")
    return {"out": out, "model_file": model_file, "scores": table, "pixel_f1": pixel_f1,
            "exported": exported, "max_gap": gaps}


if __name__ == "__main__":
    main()
