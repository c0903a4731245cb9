"""Speed of KNNDetector.score_samples against a bare torch.cdist + topk and PyOD's KNN.

Same arrays for all three (float32 features, Euclidean distance, mean of the k
nearest distances). Prints the median wall time of ``--repeats`` interleaved runs and the
ratios ``KNNDetector / bare torch`` (goal <= 1.2) and ``PyOD KNN / KNNDetector``.

    python benchmarks/bench_knn.py --n-train 2000 --n-query 500 --n-features 512
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _timings(funcs, repeats):
    """Median wall time of each function; runs are interleaved so that load on a
    shared machine hits all of them alike."""
    for func in funcs.values():
        func()  # warm-up (allocations, lazy initialisation, CUDA context)
    times = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, func in funcs.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            func()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(n_train=2000, n_query=500, n_features=512, n_neighbors=5, repeats=15, device="cpu", pyod=True):
    from mvtec_sklearn.detectors import KNNDetector

    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(n_train, n_features)).astype(np.float32)
    X_query = rng.normal(size=(n_query, n_features)).astype(np.float32)

    det = KNNDetector(n_neighbors=n_neighbors, method="mean", device=device).fit(X_train)
    dev = torch.device(device)

    def bare_torch():
        # the same work as score_samples: host -> device, distances, top-k, mean, back to numpy
        with torch.inference_mode():
            train = torch.from_numpy(X_train).to(dev)
            query = torch.from_numpy(X_query).to(dev)
            dist = torch.cdist(query, train)
            return -torch.topk(dist, n_neighbors, dim=1, largest=False).values.mean(dim=1).cpu().numpy()

    ours = det.score_samples(X_query)
    np.testing.assert_allclose(ours, bare_torch(), rtol=1e-3, atol=1e-3)
    funcs = {"ours": lambda: det.score_samples(X_query), "torch": bare_torch}
    if pyod:
        from pyod.models.knn import KNN

        model = KNN(n_neighbors=n_neighbors, method="mean").fit(X_train)
        np.testing.assert_allclose(-model.decision_function(X_query), ours, rtol=1e-3, atol=1e-3)
        funcs["pyod"] = lambda: model.decision_function(X_query)
    t = _timings(funcs, repeats)
    print(
        f"n_train={n_train} n_query={n_query} n_features={n_features} k={n_neighbors} float32 "
        f"device={device} torch_threads={torch.get_num_threads()} repeats={repeats} (median)"
    )
    print(f"KNNDetector.score_samples : {t['ours'] * 1e3:9.2f} ms")
    print(f"bare torch.cdist + topk   : {t['torch'] * 1e3:9.2f} ms   ratio ours/torch = {t['ours'] / t['torch']:.2f}")
    if pyod:
        print(f"PyOD KNN.decision_function: {t['pyod'] * 1e3:9.2f} ms   ratio pyod/ours  = {t['pyod'] / t['ours']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-query", type=int, default=500)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--n-neighbors", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-pyod", action="store_true")
    args = parser.parse_args()
    main(args.n_train, args.n_query, args.n_features, args.n_neighbors, args.repeats, args.device, not args.no_pyod)
