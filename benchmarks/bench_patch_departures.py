"""Where PatchCore and PaDiM depart from a reference implementation, and other backbones, measured.

Each row is one variant of a detector, fitted and scored on every category of
an MVTec-format root (the built-in real-photo set by default), with the
offline EfficientNet-Lite0 at 224 px. Reported per variant: mean image AUROC,
pixel AUROC and AUPRO over the categories, and how many categories it wins
or loses against the default by more than 0.01 image AUROC.

Variants (the default first):

PatchCore
  ``default``        channel pooling to ``embedding_dim`` (reference code),
                     image score re-weighted with 9 neighbours (paper eq. 7,
                     anomalib), maps smoothed with sigma 4 (both references).
  ``no-pooling``     ``embedding_dim=None``: the layers' channels
                     concatenated as they are (anomalib).
  ``max-score``      ``n_neighbors=1``: the image score is the largest patch
                     distance (the reference code's score).
  ``sigma-0``        no map smoothing.
  ``lite0-256``      the default backbone at 256 px.
  ``lite1-240``,     the offline EfficientNet-Lite1 and Lite2 at their native
  ``lite2-260``      input sizes (240 and 260 px), default layers.
PaDiM
  ``default``        100 random channels, ``Sigma + 0.01 I`` (paper), 3x3
                     neighbourhood average of the patch features (PatchCore's
                     aggregation, which the PaDiM paper does not have).
  ``no-aggregation`` ``patch_size=1``: the features as the PaDiM reference
                     reads them.
  ``all-channels``   ``n_features=None``.
  ``ledoit-wolf``    ``shrinkage="ledoit_wolf"``.

Usage::

    .venv/bin/python benchmarks/bench_patch_departures.py            # photo set
    .venv/bin/python benchmarks/bench_patch_departures.py --root R --categories a,b
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

VARIANTS = {
    "patchcore": {
        "default": {},
        "no-pooling": {"embedding_dim": None},
        "max-score": {"n_neighbors": 1},
        "sigma-0": {"smoothing_sigma": 0.0},
        "lite0-256": {"image_size": 256},
        "lite1-240": {"backbone": "efficientnet_lite1", "image_size": 240},
        "lite2-260": {"backbone": "efficientnet_lite2", "image_size": 260},
    },
    "padim": {
        "default": {},
        "no-aggregation": {"patch_size": 1},
        "all-channels": {"n_features": None},
        "ledoit-wolf": {"shrinkage": "ledoit_wolf"},
    },
}


def _evaluate(model, params, train, test, masks):
    from mvtec_sklearn.benchmark import MODEL_REGISTRY
    from mvtec_sklearn.metrics import aupro, image_auroc, pixel_auroc

    _, det = MODEL_REGISTRY[model].build(image_size=224, random_state=0)
    det.set_params(**params)
    t0 = time.perf_counter()
    det.fit(train.paths)
    scores, maps = det.score_samples_and_anomaly_map(test.paths)
    seconds = time.perf_counter() - t0
    return {"image_auroc": image_auroc(test.target, -scores),
            "pixel_auroc": pixel_auroc(masks, maps), "aupro": aupro(masks, maps),
            "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None,
                        help="MVTec-format root (default: the built-in real-photo set)")
    parser.add_argument("--categories", default=None, help="comma-separated (default: all)")
    parser.add_argument("--models", default="patchcore,padim")
    parser.add_argument("--variants", default=None,
                        help="comma-separated variant names (default: all; 'default' is "
                        "always run, as the reference of the comparison)")
    args = parser.parse_args(argv)
    chosen = None if args.variants is None else {"default", *args.variants.split(",")}

    from mvtec_sklearn import datasets
    from mvtec_sklearn.datasets import list_categories, load_masks, load_mvtec

    root = args.root or datasets.photos_root()
    categories = args.categories.split(",") if args.categories else list_categories(root)
    rows = []
    for category in categories:
        train = load_mvtec(root, category, split="train")
        test = load_mvtec(root, category, split="test")
        size = np.asarray(__import__("PIL.Image").Image.open(test.paths[0])).shape[:2]
        masks = load_masks(test.mask_paths, size=size)
        for model in args.models.split(","):
            for name, params in VARIANTS[model].items():
                if chosen is not None and name not in chosen:
                    continue
                row = {"category": category, "model": model, "variant": name,
                       **_evaluate(model, params, train, test, masks)}
                rows.append(row)
                print(f"{category:10s} {model:9s} {name:15s} image {row['image_auroc']:.3f} "
                      f"pixel {row['pixel_auroc']:.3f} aupro {row['aupro']:.3f} "
                      f"{row['seconds']:.1f}s", flush=True)
    frame = pd.DataFrame(rows)
    print("\n| model | variant | image AUROC | pixel AUROC | AUPRO | wins / losses vs default |")
    print("|---|---|---|---|---|---|")
    for (model, name), part in frame.groupby(["model", "variant"], sort=False):
        base = frame[(frame.model == model) & (frame.variant == "default")]
        diff = part.image_auroc.to_numpy() - base.image_auroc.to_numpy()
        print(f"| {model} | {name} | {part.image_auroc.mean():.3f} | "
              f"{part.pixel_auroc.mean():.3f} | {part.aupro.mean():.3f} | "
              f"{int((diff > 0.01).sum())} / {int((diff < -0.01).sum())} |")


if __name__ == "__main__":
    main()
