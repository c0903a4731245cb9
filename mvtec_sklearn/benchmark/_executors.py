"""Executors of the benchmark's jobs: joblib (loky, threading) and Dask distributed.

Both run a function over a list of argument tuples and yield ``(index, result)``
in completion order.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings

#: The values of ``run_benchmark(backend=...)`` besides None (loky). joblib's
#: "multiprocessing" backend is not among them: it cannot yield results in
#: completion order (``return_as="generator_unordered"``).
BACKENDS = ("loky", "threading", "dask")


def _check_backend(backend):
    """Raise a ``ValueError`` unless ``backend`` is None or one of :data:`BACKENDS`."""
    if backend not in (None, *BACKENDS):
        raise ValueError(f"backend must be None, 'loky', 'threading' or 'dask'; got {backend!r}.")


def _indexed(func, index, *args):
    return index, func(*args)


_WATCHED_PARENT: list[int] = []


def _exit_with_parent(owner_pid, poll=0.5):
    """In a worker process of ``owner_pid``: exit as soon as that process is gone.

    A benchmark killed with SIGKILL cannot stop its joblib workers, which would
    otherwise finish their current job (minutes of a deep model) for nothing. A
    daemon thread notices the re-parenting and ends the worker.
    """
    if os.getppid() != owner_pid or _WATCHED_PARENT:
        return  # the main process itself (threading backend), or already watched
    _WATCHED_PARENT.append(owner_pid)

    def watch():
        while os.getppid() == owner_pid:
            time.sleep(poll)
        os._exit(1)

    import threading

    threading.Thread(target=watch, name="mvtec-sklearn-parent-watch", daemon=True).start()


def _indexed_in_worker(owner_pid, func, index, *args):
    _exit_with_parent(owner_pid)
    return index, func(*args)


# --------------------------------------------------------------------------------------
# Executors: joblib (loky, threading, ...) and Dask distributed
# --------------------------------------------------------------------------------------


class _JoblibExecutor:
    def __init__(self, n_jobs, backend):
        self.n_jobs = n_jobs
        self.backend = backend

    def share(self, obj):
        return obj

    def run(self, func, arg_tuples):
        """Yield ``(index, result)`` in completion order."""
        from joblib import Parallel, delayed

        if not arg_tuples:
            return
        parallel = Parallel(
            n_jobs=self.n_jobs, backend=self.backend, return_as="generator_unordered"
        )
        tasks = (
            delayed(_indexed_in_worker)(os.getpid(), func, i, *args)
            for i, args in enumerate(arg_tuples)
        )
        with warnings.catch_warnings(), contextlib.closing(parallel(tasks)) as gen:
            # loky replaces a worker whose memory grew (torch models do); that is harmless here
            warnings.filterwarnings(
                "ignore", message="A worker stopped while some jobs", category=UserWarning
            )
            yield from gen

    def close(self):
        pass


class _DaskExecutor:
    def __init__(self, scheduler, n_workers):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "backend='dask' needs dask.distributed: pip install 'mvtec-sklearn[distributed]'."
            ) from exc
        self._owned = []
        if isinstance(scheduler, Client):
            self.client = scheduler
        elif scheduler is None:
            import logging

            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            self.client = Client(cluster)
            self._owned = [self.client, cluster]
        else:
            self.client = Client(scheduler)
            self._owned = [self.client]

    def share(self, obj):
        return self.client.scatter(obj, broadcast=False)

    def run(self, func, arg_tuples):
        from dask.distributed import as_completed

        futures = [
            self.client.submit(_indexed, func, i, *args, pure=False)
            for i, args in enumerate(arg_tuples)
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self):
        for obj in self._owned:
            obj.close()


def _make_executor(n_jobs, backend, scheduler):
    from joblib import effective_n_jobs

    n = effective_n_jobs(n_jobs)
    cpus = os.cpu_count() or 1
    if backend == "dask":
        # A LocalCluster we create gets one single-threaded worker per job; a remote
        # cluster's workers keep their own thread settings.
        threads = max(1, cpus // n) if scheduler is None and n > 1 else None
        return _DaskExecutor(scheduler, n), threads
    if scheduler is not None:
        raise ValueError("scheduler is only used with backend='dask'.")
    threads = max(1, cpus // n) if n > 1 else None
    return _JoblibExecutor(n_jobs, backend), threads
