"""The benchmark's planning, executors and results folder, tested without running a benchmark."""

import os

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM

from mvtec_sklearn.benchmark._executors import BACKENDS, _check_backend, _make_executor
from mvtec_sklearn.benchmark._jobs import _CategoryData, _Job
from mvtec_sklearn.benchmark._planning import _plan, _Request, _resolve_models
from mvtec_sklearn.benchmark._results import _Outputs


def _request(root, models, seeds=1, random_state=0):
    return _Request.resolve(
        root=root,
        dataset=None,
        categories="bottle",
        models=models,
        metrics="image_auroc",
        image_size=32,
        random_state=random_state,
        seeds=seeds,
        n_bootstrap=5,
    )


def test_request_resolves_names_and_seeds(tiny_root):
    request = _request(tiny_root, "all", seeds=3, random_state=5)
    assert request.categories == ["bottle"] and request.metrics == ["image_auroc"]
    assert request.seeds == [5, 6, 7] and len(request.models) > 20
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        _request(tiny_root, "all", seeds=0)


def test_plan_returns_one_job_per_model_and_seed_and_shares_features(tiny_root):
    request = _request(tiny_root, ["iforest-handcrafted", "lof-handcrafted"], seeds=2,
                       random_state=3)
    plan = _plan(request, finished={}, n_threads=2)

    # the isolation forest is stochastic (two seeds), the local outlier factor is not (one run)
    assert [(job.model, job.seed) for job, _ in plan.jobs] == [
        ("iforest-handcrafted", None), ("iforest-handcrafted", 4), ("lof-handcrafted", None)
    ]
    assert plan.total == 3 and plan.finished == {} and plan.build_errors == []
    keys = {key for _, key in plan.jobs}
    assert len(keys) == 1 and set(plan.feature_groups) == keys  # one shared featurizer
    job = plan.jobs[0][0]
    assert isinstance(job, _Job) and job.n_threads == 2 and job.n_bootstrap == 5
    assert job.base_row["random_state"] == 3 and job.base_row["n_test_anomalous"] == 4
    assert job.data is plan.jobs[2][0].data and job.data.category == "bottle"


def test_plan_keeps_the_rows_a_previous_run_finished(tiny_root):
    request = _request(tiny_root, ["iforest-pixels", "ocsvm-pixels"])
    first = _plan(request, finished={})
    done = first.jobs[0][0].base_row
    previous = {("bottle", "iforest-pixels", done["config_id"]): {"status": "ok", "x": 1}}

    again = _plan(request, finished=previous)

    assert again.finished == {("bottle", "iforest-pixels", 0): {"status": "ok", "x": 1}}
    assert [job.model for job, _ in again.jobs] == ["ocsvm-pixels"]
    assert again.total == 1


def test_plan_records_a_model_that_cannot_be_built(tiny_root, temp_register):
    def broken(random_state=None):
        raise RuntimeError("no such backbone")

    temp_register("broken-factory", broken, "fails on build")
    plan = _plan(_request(tiny_root, ["broken-factory"], seeds=2), finished={})

    assert plan.jobs == []
    [(row, trace)] = plan.build_errors  # reported once, not once per seed
    assert row["status"] == "error" and "no such backbone" in row["error"]
    assert "RuntimeError" in trace and plan.total == 1


@pytest.mark.parametrize("backend", [None, *BACKENDS])
def test_check_backend_accepts_the_documented_backends(backend):
    _check_backend(backend)


def test_check_backend_names_the_choices():
    for backend in ("spark", "multiprocessing"):  # joblib multiprocessing: no unordered results
        with pytest.raises(ValueError, match=f"'threading' or 'dask'; got '{backend}'"):
            _check_backend(backend)


def test_joblib_executor_gives_each_parallel_job_its_share_of_threads(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    executor, threads = _make_executor(2, "threading", None)
    assert threads == 4 and executor.backend == "threading"
    assert sorted(executor.run(pow, [(2, 3), (3, 2)])) == [(0, 8), (1, 9)]
    assert _make_executor(1, None, None)[1] is None
    with pytest.raises(ValueError, match="only used with backend='dask'"):
        _make_executor(2, "loky", "tcp://host:8786")


def _maps_result(data):
    keep = np.array([0, 1])
    row = {"category": "bottle", "model": "m", "config_id": "abc", "status": "ok"}
    scores = np.linspace(0, 1, len(data.test_paths))
    return {"row": row, "scores": scores, "maps": (keep, np.zeros((2, 4, 4), np.float16)),
            "traceback": None}


def test_outputs_draw_the_overlay_of_saved_maps_and_log_its_failure(tiny_root, tmp_path):
    data = _CategoryData.load(tiny_root, "bottle")
    job = _Job("bottle", "m", None, data, ["image_auroc"])
    drawn = []
    outputs = _Outputs(tmp_path / "out", tiny_root, overlay=lambda *paths: drawn.append(paths))
    outputs.save_job(job, _maps_result(data))
    out = os.fspath(tmp_path / "out")
    assert drawn == [(os.path.join(out, "maps", "bottle__m.npz"),
                      os.path.join(out, "plots", "maps", "bottle__m.png"))]
    assert os.path.isfile(drawn[0][0])

    def fail(saved, path):
        raise OSError("disk full")

    _Outputs(out, tiny_root, overlay=fail).save_job(job, _maps_result(data))
    with open(os.path.join(out, "benchmark.log")) as fh:
        assert "could not draw plots/maps/bottle__m.png: OSError: disk full" in fh.read()
    # the row is written whether or not the figure could be drawn
    with open(os.path.join(out, "results.csv")) as fh:
        assert len(fh.read().splitlines()) == 3


def test_estimators_of_a_user_model_are_cloned_and_seeded():
    [model] = _resolve_models([("forest", IsolationForest(random_state=1))])
    featurizer, detector = model.build(image_size=None, random_state=7)
    assert featurizer is None and detector.random_state == 7
    [svm] = _resolve_models({"svm": OneClassSVM()})
    assert svm.weights == "user-defined" and svm.input == "images"
