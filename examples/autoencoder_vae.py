"""Deep reconstruction detectors: a convolutional autoencoder and a variational autoencoder.

Both train on the good images of one category only, with early stopping on a
held-out fraction of them (``validation_fraction``), and keep their learning
curves in ``history_``. The image score is derived from the reconstruction error
(AE: a high quantile of the smoothed error map; VAE: the negative ELBO), and
``anomaly_map`` returns the per-pixel error at the input resolution, so both are
evaluated with the image AUROC and the pixel AUROC.

Run ``python examples/autoencoder_vae.py [--root MVTEC_FOLDER] [--category bottle]
[--epochs 50] [--device cuda]``; ``--quick`` trains for two epochs on 32 px images.
"""

from __future__ import annotations

import argparse

import pandas as pd

from mvtec_sklearn.datasets import load_masks, load_mvtec, synthetic_root
from mvtec_sklearn.detectors import AutoencoderDetector, VAEDetector
from mvtec_sklearn.metrics import anomaly_scores, image_auroc, pixel_auroc


def main(argv=None):
    """Run the example; return a DataFrame of metrics per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MVTec AD folder (default: synthetic data)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--epochs", type=int, default=None, help="max_epochs (default 50, quick 2)")
    parser.add_argument("--image-size", type=int, default=None, help="default 64, quick 32")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)

    root = args.root or synthetic_root(categories=[args.category], image_size=64,
                                       **(dict(n_train=10, n_test_good=4, n_test_defect=6) if args.quick else {}))
    train = load_mvtec(root, args.category, split="train")
    test = load_mvtec(root, args.category, split="test")
    image_size = args.image_size or (32 if args.quick else 64)
    epochs = args.epochs or (2 if args.quick else 50)
    common = dict(image_size=image_size, max_epochs=epochs, device=args.device, random_state=0)
    models = {
        "autoencoder": AutoencoderDetector(base_channels=8 if args.quick else 32, **common),
        "vae": VAEDetector(base_channels=8 if args.quick else 32, **common),
    }

    rows = []
    for name, model in models.items():
        model.fit(train.paths)
        scores = anomaly_scores(model, test.paths)
        maps = model.anomaly_map(test.paths)                  # (n, H, W) at the input resolution
        masks = load_masks(test.mask_paths, size=maps.shape[1:])
        rows.append({"model": name, "epochs_run": len(model.history_),
                     "image_auroc": image_auroc(test.target, scores), "pixel_auroc": pixel_auroc(masks, maps)})
        print(f"{name}: learning curve (last epochs)\n{model.history_.tail(3).to_string()}")
    results = pd.DataFrame(rows).set_index("model")
    print(results.round(3).to_string())
    return results


if __name__ == "__main__":
    main()
