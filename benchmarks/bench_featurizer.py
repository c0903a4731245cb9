"""Speed of DeepFeaturizer against a bare torch forward, and paths against arrays.

In one run, on the same images:

1. bare: a plain ``nn.Sequential`` forward of the same truncated ResNet
   (stem, layer1..layer3, the featurizer's own weights) on batches that are
   already resized, normalised tensors on the device: the floor;
2. arrays: ``DeepFeaturizer.transform`` on a uint8 array (preprocessing,
   hooks, 3x3 averaging, resize, concatenation, pooling included);
3. paths: ``transform`` on PNG files, decoded and resized in ``num_workers``
   DataLoader workers (and with 0 workers for reference).

Goals (issue 4): arrays / bare < 1.10; paths (2 workers) / arrays <= 1.3.
Each configuration runs ``--repeats`` times, interleaved with the others
after a warm-up, so background load affects all of them alike; the ratios
use the best (minimum) time, the usual estimate of the intrinsic cost on a
shared machine, and the median is printed beside it.

Examples
--------
CPU, small::

    python benchmarks/bench_featurizer.py --image-size 128 --n-images 64

CUDA, the issue's throughput check::

    python benchmarks/bench_featurizer.py --device cuda --image-size 224 \
        --n-images 512 --batch-size 64 --archs resnet18 wide_resnet50_2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from mvtec_sklearn.features import ResNetFeaturizer


def make_images(n, size, seed=0):
    """Smooth blobs plus noise, uint8 (n, size, size, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)
        img = np.stack([blob, 0.5 * blob + 0.3, 1 - blob], -1) * 200
        images[i] = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    return images


def bare_network(model):
    """The truncated ResNet as plain modules: (stem+layer1+layer2, layer3)."""
    head = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool,
                               model.layer1, model.layer2)
    return head, model.layer3


def timer(device):
    def now():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def bench_arch(arch, args, images, paths):
    feat = ResNetFeaturizer(
        arch=arch, weights=None, image_size=args.image_size, device=args.device,
        batch_size=args.batch_size, precision=args.precision, random_state=0,
    ).fit(images)
    device = feat.device_
    now = timer(device)
    head, layer3 = bare_network(feat.model_)
    prepared = [x.clone() for x in feat._batches(images)]  # same preprocessing, done once
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]

    def run_bare():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            for x in prepared:
                layer3(head(x))

    def run_transform(X, workers):
        feat.set_params(num_workers=workers)
        feat.transform(X)

    runs = {
        "bare forward": run_bare,
        "transform(arrays)": lambda: run_transform(images, 0),
        "transform(paths), 0 workers": lambda: run_transform(paths, 0),
        f"transform(paths), {args.num_workers} workers": (
            lambda: run_transform(paths, args.num_workers)
        ),
    }
    times = {name: [] for name in runs}
    for name, fn in runs.items():  # warm-up
        fn()
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = now()
            fn()
            times[name].append(now() - start)
    best = {name: min(t) for name, t in times.items()}
    n = len(images)
    print(f"\n{arch}: {n} images, {args.image_size} px, batch {args.batch_size}, "
          f"device {device}, precision {args.precision}, torch threads {torch.get_num_threads()}, "
          f"best / median of {args.repeats}")
    for name, seconds in best.items():
        print(f"  {name:32s} {seconds:8.3f} s  {n / seconds:9.1f} images/s"
              f"   (median {statistics.median(times[name]):.3f} s)")
    paths_key = f"transform(paths), {args.num_workers} workers"
    overhead = best["transform(arrays)"] / best["bare forward"]
    print(f"  overhead arrays / bare           {overhead:.3f}  (goal < 1.10)")
    print(f"  paths ({args.num_workers} workers) / arrays        "
          f"{best[paths_key] / best['transform(arrays)']:.3f}  (goal <= 1.30)")
    print(f"  paths (0 workers) / arrays        "
          f"{best['transform(paths), 0 workers'] / best['transform(arrays)']:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=["resnet18"])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--n-images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    images = make_images(args.n_images, args.image_size)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, img in enumerate(images):
            path = os.path.join(folder, f"{i:04d}.png")
            Image.fromarray(img).save(path)
            paths.append(path)
        for arch in args.archs:
            bench_arch(arch, args, images, paths)


if __name__ == "__main__":
    main()
