"""How close the calibrated masks come to the best single pixel threshold, per category.

For every category of the built-in synthetic set and/or the real-photo set
this fits a registry map model inside
:class:`~mvtec_sklearn.model_selection.CalibratedThresholdDetector` with the
settings of ``mvtec-sklearn fit`` (5 % image false-positive rate, 20 % of the
good training images held out, ``pixel_method`` as given, refit on all good
images, seed 0), scores the test images as ``mvtec-sklearn predict`` does
(mask = anomaly map > ``pixel_threshold_``) and prints, per category, the
pixel F1 of those masks against the ground truth, the best pixel F1 any single
threshold reaches on the same test maps, and the gap between them. The
calibration sees good training images only; the test images are used for
the scoring alone.

Usage::

    nice .venv/bin/python benchmarks/bench_pixel_calibration.py --dataset synthetic photos
    nice .venv/bin/python benchmarks/bench_pixel_calibration.py --model padim --categories bottle
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from mvtec_sklearn.benchmark import MODEL_REGISTRY
from mvtec_sklearn.datasets import (
    CATEGORIES,
    PHOTO_CATEGORIES,
    load_masks,
    load_mvtec,
    photos_root,
    synthetic_root,
)
from mvtec_sklearn.metrics import f1_max
from mvtec_sklearn.model_selection import CalibratedThresholdDetector


def measure(model, dataset, category, args):
    """One row: the calibrated masks' pixel F1 against the best threshold's on the test set."""
    make_root = synthetic_root if dataset == "synthetic" else photos_root
    root = make_root(categories=[category], n_train=args.n_train, n_test_good=args.n_test_good,
                     n_test_defect=args.n_test_defect, image_size=args.image_size)
    train, test = load_mvtec(root, category, "train"), load_mvtec(root, category, "test")
    start = time.perf_counter()
    _, detector = MODEL_REGISTRY[model].build(image_size=args.image_size, random_state=0)
    detector.set_params(verbose=False)
    det = CalibratedThresholdDetector(detector, target_fpr=0.05, pixel_method=args.pixel_method,
                                      calibration_fraction=0.2, refit=not args.no_refit,
                                      random_state=0).fit(train.paths)
    maps = det.anomaly_map(test.paths)
    truth = load_masks(test.mask_paths, size=maps.shape[1:]).ravel()
    best, best_threshold = f1_max(truth, maps.ravel())
    chosen = f1_score(truth, maps.ravel() > det.pixel_threshold_)
    return {"dataset": dataset, "category": category, "model": model,
            "method": args.pixel_method, "refit": not args.no_refit, "f1": chosen, "best_f1": best, "gap": best - chosen,
            "threshold": det.pixel_threshold_, "best_threshold": best_threshold,
            "seconds": time.perf_counter() - start}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", nargs="+", choices=["synthetic", "photos"],
                        default=["synthetic", "photos"])
    parser.add_argument("--categories", default=None,
                        help="comma-separated subset (default: every category of each dataset)")
    parser.add_argument("--model", nargs="+", default=["patchcore"],
                        help="registry map models (default: %(default)s)")
    parser.add_argument("--pixel-method", choices=["synthetic", "fpr"], default="synthetic")
    parser.add_argument("--no-refit", action="store_true",
                        help="keep the estimator the thresholds were calibrated on (fitted on "
                        "80 %% of the good images) instead of refitting on all of them")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=30)
    parser.add_argument("--n-test-good", type=int, default=8)
    parser.add_argument("--n-test-defect", type=int, default=16)
    parser.add_argument("--out", default=None, help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    rows = []
    for dataset in args.dataset:
        names = CATEGORIES if dataset == "synthetic" else PHOTO_CATEGORIES
        if args.categories:
            names = [c for c in args.categories.split(",") if c in names]
        for model in args.model:
            for category in names:
                rows.append(measure(model, dataset, category, args))
                r = rows[-1]
                print(f"{dataset:9s} {category:11s} {model:9s} F1 {r['f1']:.3f}  best "
                      f"{r['best_f1']:.3f}  gap {r['gap']:+.3f}  ({r['seconds']:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    print()
    print("| dataset | category | model | calibrated F1 | best F1 | gap |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['dataset']} | {r['category']} | {r['model']} | {r['f1']:.3f} | "
              f"{r['best_f1']:.3f} | {r['gap']:.3f} |")
    for (dataset, model), part in table.groupby(["dataset", "model"]):
        print(f"{dataset} / {model}: {int((part.gap <= 0.05).sum())} of {len(part)} categories "
              f"within 0.05 of the best F1; mean gap {part.gap.mean():.3f}, largest "
              f"{part.gap.max():.3f} ({part.category[part.gap.idxmax()]})")


if __name__ == "__main__":
    main()
