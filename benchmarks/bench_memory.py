"""Peak memory of scoring large images with PatchCore: 4000 x 4000 against 256 x 256.

Memory should follow the work (``image_size`` and ``batch_size``), not the
native resolution of the input files. The same fitted ``PatchCoreDetector``
(ResNet-18 with random weights, ``layer2 + layer3``, ``image_size=224``,
``batch_size=32``) scores 32 image files of 4000 x 4000 and 32 of 256 x 256,
each size in a fresh process, and the peaks are printed side by side:

* peak RSS    -- the process's peak resident set size during the call (Linux
                 ``VmHWM``, reset just before the call): everything, torch included;
* call growth -- that peak minus the resident size just before the call: the
                 memory the call itself needed;
* numpy peak  -- the peak of numpy allocations during the call (tracemalloc; torch's
                 own buffers are not counted).

Run from the repository root (Linux)::

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --big 2000 --n-images 16

The 32 paths of one size all point to the same file (decoding cost and memory
are the same as for 32 different files, and the disk holds one 48 MB PNG).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc


def _status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(path, n_images, batch_size):
    """Fit on 8 small images, then measure one ``score_samples`` call on ``n_images`` paths."""
    import numpy as np
    import torch

    from mvtec_sklearn.detectors import PatchCoreDetector

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    rng = np.random.default_rng(0)
    det = PatchCoreDetector(backbone="resnet18", weights=None, image_size=224,
                            batch_size=batch_size, device="cpu", random_state=0)
    det.fit(rng.integers(0, 256, (8, 256, 256, 3), dtype=np.uint8))
    paths = [path] * n_images
    det.score_samples(paths[:1])  # warm-up: lazy initialisations are not the call's memory
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM, the peak RSS
    tracemalloc.start()
    scores = det.score_samples(paths)
    numpy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = _status("VmHWM")
    assert scores.shape == (n_images,) and np.isfinite(scores).all()
    print(json.dumps({"before": before, "peak": peak, "numpy_peak": numpy_peak}))


def _measure(path, args):
    out = subprocess.run(
        [sys.executable, __file__, "--child", path, "--n-images", str(args.n_images),
         "--batch-size", str(args.batch_size)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=4000, help="side of the large images")
    parser.add_argument("--small", type=int, default=256, help="side of the small images")
    parser.add_argument("--n-images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.n_images, args.batch_size)
        return

    import numpy as np
    from PIL import Image

    folder = tempfile.mkdtemp(prefix="bench_memory-")
    rng = np.random.default_rng(0)
    rows = {}
    for side in (args.small, args.big):
        path = os.path.join(folder, f"{side}.png")
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            path, compress_level=1)
        rows[side] = _measure(path, args)
        os.remove(path)
    os.rmdir(folder)

    mib = 2.0**20
    print(f"PatchCore (ResNet-18, image_size=224, batch_size={args.batch_size}) scoring "
          f"{args.n_images} image files, CPU")
    print(f"{'':>14} {'peak RSS':>10} {'call growth':>12} {'numpy peak':>11}  (MiB)")
    for side, row in rows.items():
        print(f"{f'{side} x {side}':>14} {row['peak'] / mib:10.0f} "
              f"{(row['peak'] - row['before']) / mib:12.0f} {row['numpy_peak'] / mib:11.1f}")
    big, small = rows[args.big], rows[args.small]
    print(f"ratio {args.big} / {args.small}: peak RSS {big['peak'] / small['peak']:.2f}x, "
          f"call growth {(big['peak'] - big['before']) / (small['peak'] - small['before']):.2f}x")


if __name__ == "__main__":
    main()
