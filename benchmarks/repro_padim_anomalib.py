"""Our PaDiM set up as anomalib's reproduces anomalib's scores; what each departure changes.

On the parity folders of ``parity_anomalib.py`` (same generators, sizes and seed),
per category:

- ``ours``: ``PaDiMDetector`` as the benchmark registry builds it (3 x 3
  aggregation, coarser layer upsampled bilinearly);
- ``ours as anomalib``: the same detector with ``patch_size=1`` (no
  aggregation) and the coarser layer upsampled by nearest neighbour, as
  anomalib's ``PadimModel.generate_embedding`` does (``torch.nn.functional.
  interpolate`` is switched to ``mode="nearest"`` for multi-channel feature
  maps while it fits and scores; there is no parameter for it);
- ``ours, nearest``: the default with only the upsampling switched;
- ``anomalib``: anomalib's ``PadimModel`` in its own environment with *our*
  random channel subset (``--same-channels`` of the parity script), so that
  the draw is the same on both sides.

It prints image AUROC / pixel AUROC / AUPRO of each, and how far anomalib's
image scores are from ``ours as anomalib`` (correlation, largest relative
difference). Timings are not measured here (``parity_anomalib.py`` does).

Usage::

    .venv/bin/python benchmarks/repro_padim_anomalib.py --datasets photos --categories brick,coffee
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import parity_anomalib as parity  # noqa: E402


@contextlib.contextmanager
def nearest_feature_upsampling():
    """Within the block, multi-channel bilinear upsampling becomes nearest-neighbour."""
    original = F.interpolate

    def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, **kw):
        if mode == "bilinear" and x.dim() == 4 and x.shape[1] > 1:
            return original(x, size=size, mode="nearest")
        return original(x, size=size, scale_factor=scale_factor, mode=mode,
                        align_corners=align_corners, **kw)

    F.interpolate = interpolate
    try:
        yield
    finally:
        F.interpolate = original


def _ours(cfg, patch_size, nearest):
    from mvtec_sklearn.benchmark import MODEL_REGISTRY

    _, model = MODEL_REGISTRY["padim"].build(image_size=cfg["image_size"], random_state=cfg["seed"])
    model.set_params(n_features=cfg["n_features"], device="cpu", batch_size=cfg["batch_size"],
                     verbose=False, patch_size=patch_size)
    with nearest_feature_upsampling() if nearest else contextlib.nullcontext():
        model.fit(cfg["train"])
        normality, maps = model.score_samples_and_anomaly_map(cfg["test"])
    return model, -normality, maps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="photos,synthetic")
    parser.add_argument("--categories", default=None, help="comma-separated (default: all)")
    parser.add_argument("--anomalib-venv", default=".venv-anomalib")
    parser.add_argument("--data", default=None, help="keep the generated folders here")
    args = parser.parse_args(argv)
    args.n_train, args.n_test_good, args.n_test_defect, args.image_px = 30, 10, 20, 256

    from mvtec_sklearn.datasets import load_masks, load_mvtec, read_image_size

    torch.set_num_threads(2)
    anomalib_python = parity.ensure_anomalib_venv(args.anomalib_venv)
    data_root = Path(args.data or tempfile.mkdtemp(prefix="repro_padim_"))
    sides = ("ours", "ours as anomalib", "ours, nearest", "anomalib")
    print("| dataset | category | " + " | ".join(sides) + " | score correlation | largest "
          "relative difference |")
    print("|---|---|" + "---|" * (len(sides) + 2))
    for dataset in args.datasets.split(","):
        categories = (args.categories.split(",") if args.categories
                      else parity._categories(dataset))
        root = data_root / dataset
        parity._generate(dataset, root, categories, args)
        for category in categories:
            train = load_mvtec(root, category, split="train")
            test = load_mvtec(root, category, split="test")
            masks = load_masks(test.mask_paths, size=read_image_size(test.paths[0]))
            cfg = {"model": "padim", "train": list(map(str, train.paths)),
                   "test": list(map(str, test.paths)), "image_size": 224, "n_features": 100,
                   "batch_size": 32, "threads": 2, "seed": 0, "coreset_ratio": 0.1,
                   "n_neighbors": 9}
            cells, scores = [], {}
            for side, patch_size, nearest in ((sides[0], 3, False), (sides[1], 1, True),
                                              (sides[2], 3, True)):
                model, scores[side], maps = _ours(cfg, patch_size, nearest)
                m = parity.anomaly_metrics(test.target, masks, scores[side], maps)
                cells.append(m)
            cfg["channels"] = model.channels_.tolist()
            with tempfile.TemporaryDirectory() as tmp:
                res = parity.run_worker(anomalib_python, "anomalib", cfg, tmp)
            cells.append(parity.anomaly_metrics(test.target, masks, res["scores"], res["maps"]))
            ref, same = res["scores"], scores[sides[1]]
            corr = float(np.corrcoef(same, ref)[0, 1])
            rel = float(np.abs(same - ref).max() / np.abs(ref).max())
            text = " | ".join(f"{m['image_auroc']:.3f} / {m['pixel_auroc']:.3f} / {m['aupro']:.3f}"
                              for m in cells)
            print(f"| {dataset} | {category} | {text} | {corr:.4f} | {rel:.4f} |", flush=True)


if __name__ == "__main__":
    main()
