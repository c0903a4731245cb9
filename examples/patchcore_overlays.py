"""PatchCore anomaly maps drawn over the test images.

Fits :class:`~mvtec_sklearn.detectors.PatchCoreDetector` on the good images of
one category, scores the test images, computes their anomaly maps (at the input
resolution) and evaluates image AUROC, pixel AUROC and AUPRO. Two figures are
written: the top-scored images and the worst-missed defective ones
(:func:`~mvtec_sklearn.plotting.plot_anomaly_grid`), and image / overlay pairs
with the ground-truth outline (green) and the outline of the pixels above the
F1-optimal pixel threshold (white, dashed; chosen on these test maps, so it is
for display, not an evaluation) (:class:`~mvtec_sklearn.plotting.AnomalyMapDisplay`).

The default backbone, ``efficientnet_lite0``, ships ImageNet weights in the
``offline`` extra (no network needed); ``--backbone resnet18 --weights DEFAULT``
uses torchvision's weights from the torch cache.

Run ``python examples/patchcore_overlays.py [--root MVTEC_FOLDER] [--category bottle] [--out DIR]``;
``--quick`` uses 64 px images (a few seconds).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from mvtec_sklearn.datasets import load_masks, load_mvtec, synthetic_root  # noqa: E402
from mvtec_sklearn.detectors import PatchCoreDetector  # noqa: E402
from mvtec_sklearn.metrics import anomaly_scores, aupro, image_auroc, pixel_auroc, select_threshold  # noqa: E402
from mvtec_sklearn.plotting import AnomalyMapDisplay, plot_anomaly_grid  # noqa: E402


def main(argv=None):
    """Run the example; return a dict of metrics and figure paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MVTec AD folder (default: synthetic data)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--weights", default="DEFAULT", help="DEFAULT, None (random) or a state-dict file")
    parser.add_argument("--image-size", type=int, default=None, help="default 224, quick 64")
    parser.add_argument("--out", default=None, help="figure folder (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)

    root = args.root or synthetic_root(categories=[args.category], image_size=64,
                                       **(dict(n_train=10, n_test_good=4, n_test_defect=6) if args.quick else {}))
    train = load_mvtec(root, args.category, split="train")
    test = load_mvtec(root, args.category, split="test")
    weights = None if args.weights == "None" else args.weights
    detector = PatchCoreDetector(
        backbone=args.backbone, weights=weights, layers=None, coreset_ratio=0.1,
        image_size=args.image_size or (64 if args.quick else 224), random_state=0,
    ).fit(train.paths)

    scores = anomaly_scores(detector, test.paths)
    maps = detector.anomaly_map(test.paths)                      # (n, H, W), higher = more anomalous
    masks = load_masks(test.mask_paths, size=maps.shape[1:])
    result = {
        "image_auroc": image_auroc(test.target, scores),
        "pixel_auroc": pixel_auroc(masks, maps),
        "aupro": aupro(masks, maps, fpr_limit=0.3),
    }
    print(f"{args.category} ({args.backbone}, weights={weights}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in result.items()))

    out = args.out or tempfile.mkdtemp(prefix="patchcore_")
    os.makedirs(out, exist_ok=True)
    fig = plot_anomaly_grid(test.paths, maps, test.target, scores, masks=masks, n=3)
    result["grid"] = os.path.join(out, f"{args.category}_grid.png")
    fig.savefig(result["grid"])

    threshold = select_threshold(masks.ravel(), maps.ravel(), method="f1")
    defective = np.flatnonzero(test.target == 1)[:3]
    display = AnomalyMapDisplay.from_predictions(
        [test.paths[i] for i in defective], maps[defective], masks=masks[defective], threshold=threshold,
        titles=[f"{test.defect_type[i]} (score {scores[i]:.2f})" for i in defective],
    )
    result["overlays"] = os.path.join(out, f"{args.category}_overlays.png")
    display.figure_.savefig(result["overlays"])
    print(f"Figures written to {out}")
    return result


if __name__ == "__main__":
    main()
