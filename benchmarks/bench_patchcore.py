"""PatchCore speed, memory and accuracy, side by side with baselines.

(a) Coreset selection: ``greedy_coreset`` (pruned, chunked greedy k-center)
    against a straightforward loop that recomputes ``|X - c|`` for every point
    at every step (the reference/anomalib implementation).
(b) ``PatchCoreDetector`` fit + predict time (scores and maps from one
    ``score_samples_and_anomaly_map`` pass, and the ratio of the two separate
    calls ``score_samples`` + ``anomaly_map`` to it), peak resident memory
    (``ru_maxrss`` of a fresh subprocess) and image / pixel AUROC / AUPRO on a
    synthetic MVTec-format category (``make_mvtec_like``).
(d) ``PatchCoreDetector`` fit + predict against the bare pass on the same
    images in the same process: decode + resize + forward of the same
    truncated backbone, nothing else (``--bare-pass``, on categories of the
    real-photo set). The detector's time is broken down by stage (decode,
    forward, aggregation, embedding, coreset, search, maps) from a profiled
    second run; wall time and process (CPU) time are both printed, the latter
    being what a busy machine distorts least.
(c) anomalib's ``PatchcoreModel`` on the same images, same backbone, layers,
    coreset ratio and neighbour count (random init: ``pre_trained=False``,
    never a download), run in its own interpreter given by
    ``--anomalib-python`` or ``$ANOMALIB_PYTHON`` (a separate venv with
    anomalib installed) by ``parity_anomalib.py``'s worker, which loads the
    same backbone weights into it. Both maps are scored with this package's
    metrics.

Usage::

    .venv/bin/python benchmarks/bench_patchcore.py --n-train 40 \
        --anomalib-python /tmp/anomalib_venv/bin/python
    .venv/bin/python benchmarks/bench_patchcore.py --bare-pass coffee,grass
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from parity_anomalib import anomaly_metrics, bare_pass, run_worker

def _ours_worker(cfg_path):
    """Fit and predict with PatchCoreDetector; save scores and maps (runs in a subprocess)."""
    import torch

    from mvtec_sklearn.detectors import PatchCoreDetector

    cfg = json.load(open(cfg_path))
    det = PatchCoreDetector(
        backbone=cfg["backbone"], weights=cfg["weights"], layers=tuple(cfg["layers"]),
        coreset_ratio=cfg["coreset_ratio"], n_neighbors=cfg["n_neighbors"],
        image_size=cfg["image_size"], embedding_dim=cfg["embedding_dim"], device=cfg["device"],
        batch_size=cfg["batch_size"], random_state=cfg["seed"],
    )
    t0 = time.perf_counter()
    det.fit(cfg["train"])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    # one pass gives both, like anomalib's forward that returns scores and maps together
    normality, maps = det.score_samples_and_anomaly_map(cfg["test"])
    predict_s = time.perf_counter() - t1
    np.savez(cfg["out"], scores=-normality, maps=maps)
    # the same outputs from the two separate calls (a pass each)
    t2 = time.perf_counter()
    det.score_samples(cfg["test"])
    det.anomaly_map(cfg["test"])
    two_calls_s = time.perf_counter() - t2
    print(json.dumps({"fit_s": t1 - t0, "predict_s": predict_s, "two_calls_s": two_calls_s,
                      "bank": int(det.memory_bank_.shape[0]),
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bench_coreset(n, dim, k, seed=0):
    """Time greedy_coreset's k-center step against the straightforward loop."""
    import torch

    from mvtec_sklearn.detectors._coreset import k_center_greedy

    gen = torch.Generator().manual_seed(seed)
    # patch-like data: many near-duplicates around a few thousand modes
    modes = torch.randn(max(k // 2, 1), dim, generator=gen)
    X = modes[torch.randint(0, modes.shape[0], (n,), generator=gen)]
    X += 0.3 * torch.randn(n, dim, generator=gen)

    t0 = time.perf_counter()
    fast, _, _ = k_center_greedy(X, k, start_index=0)
    t_fast = time.perf_counter() - t0

    def straightforward(threads):
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        min_d = torch.full((n,), float("inf"))
        idx, picks = 0, []
        for _ in range(k):
            picks.append(idx)
            min_d = torch.minimum(min_d, torch.linalg.norm(X - X[idx], dim=1))
            idx = int(torch.argmax(min_d))
        torch.set_num_threads(old)
        return time.perf_counter() - t0, picks

    timings = {}
    for threads in sorted({1, torch.get_num_threads()}):
        timings[threads], naive = straightforward(threads)
    t_naive = min(timings.values())
    agree = float(np.mean(np.asarray(naive) == fast.numpy()))
    return {"n": n, "dim": dim, "k": k, "fast_s": t_fast, "naive_s": t_naive,
            "naive_s_by_threads": timings, "speedup": t_naive / t_fast,
            "same_selection_fraction": agree}


#: Profiled functions (module file, name) -> stage of the bare-pass breakdown.
_STAGES = {
    ("datasets/_io.py", "load_images"): "decode",
    ("features/_backbones.py", "run_to_layers"): "forward",
    ("features/_deep.py", "_patch_tensor"): "aggregation",
    ("detectors/_nn/_patch.py", "patch_embeddings"): "embedding",
    ("detectors/_coreset.py", "greedy_coreset"): "coreset",
    ("detectors/_nn/_search.py", "nearest_neighbors"): "search",
    ("detectors/_nn/_functional.py", "anomaly_maps"): "maps",
}


def _clocks():
    return time.perf_counter(), time.process_time()


def _since(start):
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def bench_bare_pass(root, category, image_size, batch_size):
    """PatchCore fit + predict against decode + forward of its truncated backbone."""
    import cProfile
    import pstats

    from mvtec_sklearn.benchmark import MODEL_REGISTRY
    from mvtec_sklearn.datasets import load_mvtec

    train = list(load_mvtec(root, category, "train").paths)
    test = list(load_mvtec(root, category, "test").paths)

    def detector():
        _, det = MODEL_REGISTRY["patchcore"].build(image_size=image_size, random_state=0)
        return det.set_params(device="cpu", batch_size=batch_size)

    def run(det):
        det.fit(train)
        det.score_samples_and_anomaly_map(test)
        return det

    det = run(detector())  # warm-up; its network serves the bare pass
    bare = bare_pass(det.featurizer_, image_size, batch_size)

    start = _clocks()
    bare(train, test)
    bare_s = _since(start)
    start = _clocks()
    run(detector())
    ours_s = _since(start)
    profile = cProfile.Profile()
    profile.runcall(run, detector())
    stages = dict.fromkeys(_STAGES.values(), 0.0)
    stats = pstats.Stats(profile)
    keys = {}
    for key, row in stats.stats.items():
        path, _, name = key
        for (suffix, func), stage in _STAGES.items():
            if name == func and path.replace(os.sep, "/").endswith(suffix):
                stages[stage] += row[3]  # cumulative time
                keys[stage] = key
    # _patch_tensor's cumulative time includes the forward passes it makes
    if "forward" in keys and "aggregation" in keys:
        callers = stats.stats[keys["forward"]][4]
        stages["aggregation"] -= callers.get(keys["aggregation"], (0, 0, 0, 0))[3]
    total = stats.total_tt
    stages["other"] = total - sum(stages.values())
    return {"category": category, "n_train": len(train), "n_test": len(test),
            "bare_wall_s": bare_s[0], "bare_cpu_s": bare_s[1],
            "ours_wall_s": ours_s[0], "ours_cpu_s": ours_s[1],
            "ratio_wall": ours_s[0] / bare_s[0], "ratio_cpu": ours_s[1] / bare_s[1],
            "stage_share": {k: v / total for k, v in stages.items()}}


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-test-good", type=int, default=20)
    parser.add_argument("--n-test-defect", type=int, default=40)
    parser.add_argument("--image-px", type=int, default=256, help="size of the generated images")
    parser.add_argument("--image-size", type=int, default=224, help="network input size")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--backbone", default="wide_resnet50_2")
    parser.add_argument("--coreset-ratio", type=float, default=0.1)
    parser.add_argument("--n-neighbors", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--embedding-dim", type=lambda v: None if v.lower() == "none" else int(v),
                        default=1024, help="PatchCoreDetector's embedding_dim ('none': all "
                        "channels, as anomalib)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--coreset-n", type=int, default=100_000)
    parser.add_argument("--coreset-k", type=int, default=2_000)
    parser.add_argument("--skip-coreset", action="store_true")
    parser.add_argument("--skip-detector", action="store_true")
    parser.add_argument("--fit-only", action="store_true",
                        help="only fit ours (peak-memory check of a large training set)")
    parser.add_argument("--anomalib-python", default=os.environ.get("ANOMALIB_PYTHON"))
    parser.add_argument("--anomalib-preload", default=None, metavar="LIBJEMALLOC",
                        help="run anomalib on this jemalloc library (parity_anomalib.py's "
                        "option of the same name)")
    parser.add_argument("--root", default=None, help="keep the generated data here; an "
                        "existing category there is reused as is")
    parser.add_argument("--bare-pass", default=None, metavar="CATEGORIES",
                        help="(d) only: comma-separated categories of the real-photo set "
                        "(60 train + 80 test images, 256 px)")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        return _ours_worker(args._worker)

    import torch

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cuda {torch.cuda.is_available()}")
    if args.bare_pass:
        from mvtec_sklearn import datasets

        root = args.root or datasets.photos_root()
        print("| category | bare pass s (wall / CPU) | PatchCore s (wall / CPU) | ratio (wall / "
              "CPU) | decode | forward | aggregation | embedding | coreset | search | maps "
              "| other |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for category in args.bare_pass.split(","):
            r = bench_bare_pass(root, category, args.image_size, args.batch_size)
            shares = " | ".join(f"{100 * v:.0f} %" for v in r["stage_share"].values())
            print(f"| {category} | {r['bare_wall_s']:.1f} / {r['bare_cpu_s']:.1f} | "
                  f"{r['ours_wall_s']:.1f} / {r['ours_cpu_s']:.1f} | {r['ratio_wall']:.2f} / "
                  f"{r['ratio_cpu']:.2f} | {shares} |", flush=True)
        return None
    if not args.skip_coreset:
        res = bench_coreset(args.coreset_n, 128, args.coreset_k)
        print(f"(a) coreset k-center on {res['n']} x {res['dim']}, k={res['k']}: "
              f"ours {res['fast_s']:.2f} s, straightforward {res['naive_s']:.2f} s "
              f"(best of threads {res['naive_s_by_threads']}), "
              f"speed-up x{res['speedup']:.1f} (same picks: {res['same_selection_fraction']:.3f})")
    if args.skip_detector:
        return None

    from mvtec_sklearn.datasets import load_masks, load_mvtec, make_mvtec_like

    root = args.root or tempfile.mkdtemp(prefix="bench_patchcore_")
    t0 = time.perf_counter()
    if os.path.isdir(os.path.join(root, args.category)):
        print(f"reusing the data in {root} (generated with the same options)")
    else:
        make_mvtec_like(root, categories=[args.category], n_train=args.n_train,
                        n_test_good=args.n_test_good, n_test_defect=args.n_test_defect,
                        image_size=args.image_px, random_state=0)
    train = load_mvtec(root, args.category, "train")
    test = load_mvtec(root, args.category, "test")
    print(f"data: {len(train.paths)} train / {len(test.paths)} test images of "
          f"{args.image_px} px in {root} ({time.perf_counter() - t0:.1f} s to generate)")
    masks = load_masks(test.mask_paths, size=args.image_px)
    layers = ["layer2", "layer3"]
    common = {"backbone": args.backbone, "layers": layers, "coreset_ratio": args.coreset_ratio,
              "n_neighbors": args.n_neighbors, "image_size": args.image_size,
              "batch_size": args.batch_size, "device": args.device, "seed": 0,
              "embedding_dim": args.embedding_dim,
              "train": list(train.paths), "test": list(test.paths)}
    print(f"settings: backbone={args.backbone} (random init, seed 0, the same weights for "
          f"both) layers={layers} "
          f"coreset_ratio={args.coreset_ratio} n_neighbors={args.n_neighbors} "
          f"image_size={args.image_size} batch_size={args.batch_size} "
          f"embedding_dim={args.embedding_dim} (ours)")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # one random initialisation (seed 0) shared by both implementations
        import torchvision

        torch.manual_seed(0)
        common["weights"] = os.path.join(tmp, "backbone.pt")
        torch.save(torchvision.models.get_model(args.backbone, weights=None).state_dict(),
                   common["weights"])
        cfg = dict(common, out=os.path.join(tmp, "ours.npz"))
        if args.fit_only:
            cfg["test"] = list(train.paths[:1])
        with open(os.path.join(tmp, "ours.json"), "w") as fh:
            json.dump(cfg, fh)
        results["mvtec_sklearn"] = _run([sys.executable, os.path.abspath(__file__),
                                         "--_worker", fh.name])
        if not args.fit_only:
            out = np.load(cfg["out"])
            results["mvtec_sklearn"].update(anomaly_metrics(test.target, masks, out["scores"],
                                                            out["maps"]))
        if args.anomalib_python and not args.fit_only:
            cfg = dict(common, model="patchcore", threads=torch.get_num_threads())
            out = run_worker(args.anomalib_python, "anomalib", cfg, tmp,
                             preload=args.anomalib_preload)
            results["anomalib"] = {k: float(out[k]) for k in ("fit_s", "predict_s", "maxrss_mb")}
            results["anomalib"]["bank"] = int(out["bank"])
            results["anomalib"].update(anomaly_metrics(test.target, masks, out["scores"],
                                                       out["maps"]))
    for name, res in results.items():
        line = (f"(b/c) {name:14s} fit {res['fit_s']:7.1f} s  predict {res['predict_s']:7.1f} s  "
                f"total {res['fit_s'] + res['predict_s']:7.1f} s  bank {res['bank']}  "
                f"peak RSS {res['maxrss_mb']:.0f} MB")
        if "image_auroc" in res:
            line += (f"  image AUROC {res['image_auroc']:.3f}  pixel AUROC "
                     f"{res['pixel_auroc']:.3f}  AUPRO {res['aupro']:.3f}")
        print(line)
    ours = results["mvtec_sklearn"]
    print(f"(b) score_samples + anomaly_map / score_samples_and_anomaly_map: "
          f"{ours['two_calls_s'] / ours['predict_s']:.2f}")
    if "anomalib" in results:
        ours, ref = results["mvtec_sklearn"], results["anomalib"]
        print(f"speed-up fit+predict vs anomalib: x"
              f"{(ref['fit_s'] + ref['predict_s']) / (ours['fit_s'] + ours['predict_s']):.2f}")
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
