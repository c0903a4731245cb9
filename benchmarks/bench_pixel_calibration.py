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

The reference beside it: the test set is split at random into halves
(``--n-splits`` times, good and defective images halved separately); one
half, with its masks, is a labelled calibration set, and the threshold of
best F1 on it is scored on the other half, as is ours. When the two mean
gaps are alike, what remains of the gap is not the pseudo-defects' fault:
the best threshold of a few test images is not known beforehand even from
labelled images of the same kind.

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


def _split_reference(truth, maps, labels, pixel_threshold, n_splits):
    """Mean gaps on random halves of the test set: a labelled half's F1 threshold against ours.

    Each split holds out half of the good and half of the defective test images
    as a labelled calibration set; the other half is scored with the threshold
    of best F1 on the labelled half and with ``pixel_threshold``, each against
    the best F1 any threshold reaches on that half.
    """
    labelled_gaps, ours_gaps = [], []
    for seed in range(n_splits):
        rng = np.random.default_rng(seed)
        calib = np.zeros(len(labels), dtype=bool)
        for label in (0, 1):
            index = rng.permutation(np.flatnonzero(labels == label))
            calib[index[: len(index) // 2]] = True
        labelled = f1_max(truth[calib].ravel(), maps[calib].ravel())[1]  # flags >= labelled
        rest_truth, rest_maps = truth[~calib].ravel(), maps[~calib].ravel()
        best = f1_max(rest_truth, rest_maps)[0]
        labelled_gaps.append(best - f1_score(rest_truth, rest_maps >= labelled))
        ours_gaps.append(best - f1_score(rest_truth, rest_maps > pixel_threshold))
    return float(np.mean(labelled_gaps)), float(np.mean(ours_gaps))


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
    maps = np.asarray(det.anomaly_map(test.paths))
    truth = load_masks(test.mask_paths, size=maps.shape[1:])
    best, best_threshold = f1_max(truth.ravel(), maps.ravel())
    chosen = f1_score(truth.ravel(), maps.ravel() > det.pixel_threshold_)
    labelled_gap, ours_gap = _split_reference(truth, maps, np.asarray(test.target),
                                              det.pixel_threshold_, args.n_splits)
    return {"dataset": dataset, "category": category, "model": model,
            "method": args.pixel_method, "refit": not args.no_refit, "f1": chosen, "best_f1": best,
            "gap": best - chosen, "threshold": det.pixel_threshold_,
            "best_threshold": best_threshold, "half_gap": ours_gap,
            "labelled_half_gap": labelled_gap, "seconds": time.perf_counter() - start}


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
    parser.add_argument("--n-splits", type=int, default=20,
                        help="random test-set halves of the labelled reference (default: %(default)s)")
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
                      f"{r['best_f1']:.3f}  gap {r['gap']:+.3f}  on halves: ours "
                      f"{r['half_gap']:+.3f}, labelled {r['labelled_half_gap']:+.3f}  "
                      f"({r['seconds']:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    print()
    print("| dataset | category | model | calibrated F1 | best F1 | gap | gap on halves: ours "
          "| labelled half |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['dataset']} | {r['category']} | {r['model']} | {r['f1']:.3f} | "
              f"{r['best_f1']:.3f} | {r['gap']:.3f} | {r['half_gap']:.3f} | "
              f"{r['labelled_half_gap']:.3f} |")
    for (dataset, model), part in table.groupby(["dataset", "model"]):
        print(f"{dataset} / {model}: {int((part.gap <= 0.05).sum())} of {len(part)} categories "
              f"within 0.05 of the best F1; mean gap {part.gap.mean():.3f}, largest "
              f"{part.gap.max():.3f} ({part.category[part.gap.idxmax()]}); on test halves, mean "
              f"gap {part.half_gap.mean():.3f} against {part.labelled_half_gap.mean():.3f} for "
              "the threshold of best F1 on the other, labelled half")


if __name__ == "__main__":
    main()
