"""run_benchmark end to end: metrics, files, resumption, failures, feature cache, backends."""

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.svm import OneClassSVM

from mvtec_sklearn.benchmark import RESULT_COLUMNS, load_results, load_scores, run_benchmark
from mvtec_sklearn.datasets import load_mvtec

from ._estimators import (
    BrokenFeaturizer,
    CountingLoader,
    Failing,
    Interrupting,
    OnePassDeviation,
    PixelDeviation,
    read_log,
)

# LOF with n_neighbors=10 on a handful of training images warns (and uses n - 1)
pytestmark = pytest.mark.filterwarnings("ignore:n_neighbors .* is greater than:UserWarning")

CATEGORIES = ["bottle", "grid"]


def test_end_to_end_writes_every_promised_file(tiny_root, tmp_path):
    out = tmp_path / "out"
    models = ["iforest-pixels", "knn-handcrafted", ("pixel-deviation", PixelDeviation())]
    results = run_benchmark(tiny_root, models=models, image_size=32, out=out, random_state=0)

    assert list(results.columns) == RESULT_COLUMNS
    assert len(results) == 6
    assert list(zip(results.category, results.model)) == [
        (c, m) for c in CATEGORIES for m in ("iforest-pixels", "knn-handcrafted", "pixel-deviation")
    ]
    assert (results.status == "ok").all(), results.error.tolist()
    for metric in ("image_auroc", "aupr", "f1_max"):
        assert results[metric].between(0, 1).all()
    maps = results.model == "pixel-deviation"
    assert results.loc[maps, ["pixel_auroc", "aupro"]].notna().all().all()
    assert results.loc[~maps, ["pixel_auroc", "aupro"]].isna().all().all()
    assert (
        (results.n_train == 6).all()
        and (results.n_test == 7).all()
        and (results.n_test_anomalous == 4).all()
    )
    assert results.loc[~maps, "feature_seconds"].notna().all()

    # results.csv holds the same rows
    pd.testing.assert_frame_equal(
        load_results(out).reset_index(drop=True), load_results(out / "results.csv")
    )
    on_disk = load_results(out)
    np.testing.assert_allclose(on_disk.image_auroc, results.image_auroc)

    # the anomaly score is -score_samples of the model fitted on the good training images only
    train = load_mvtec(tiny_root, "grid", split="train")
    test = load_mvtec(tiny_root, "grid", split="test")
    expected = -PixelDeviation().fit(train.paths).score_samples(test.paths)
    scores = load_scores(out, results=results)
    mine = scores[(scores.category == "grid") & (scores.model == "pixel-deviation")]
    assert list(mine.path) == [os.fspath(p) for p in test.paths]
    np.testing.assert_allclose(mine.anomaly_score, expected, rtol=1e-6)
    for (category, model), part in scores.groupby(["category", "model"]):
        row = results[(results.category == category) & (results.model == model)].iloc[0]
        assert row.image_auroc == pytest.approx(roc_auc_score(part.label, part.anomaly_score))
        assert row.aupr == pytest.approx(average_precision_score(part.label, part.anomaly_score))

    for rel in [
        "results.csv",
        "summary.md",
        "benchmark.log",
        "plots/heatmap_image_auroc.png",
        "plots/bars_image_auroc.png",
        "plots/heatmap_pixel_auroc.png",
        "plots/bars_pixel_auroc.png",
        "plots/roc/bottle.png",
        "plots/roc/grid.png",
        "plots/maps/bottle__pixel-deviation.png",
        "plots/maps/grid__pixel-deviation.png",
        "maps/grid__pixel-deviation.npz",
        "scores/bottle__iforest-pixels.csv",
        "scores/grid__knn-handcrafted.csv",
    ]:
        assert (out / rel).is_file() and (out / rel).stat().st_size > 0, rel
    summary = (out / "summary.md").read_text()
    assert "## Image AUROC" in summary and "**mean**" in summary and "## Pixel AUROC" in summary
    mean_line = next(line for line in summary.splitlines() if line.startswith("| **mean**"))
    assert f"{results[results.model == 'iforest-pixels'].image_auroc.mean():.3f}" in mean_line
    assert "![heatmap_image_auroc.png](plots/heatmap_image_auroc.png)" in summary
    log = (out / "benchmark.log").read_text()
    assert "grid" in log and "pixel-deviation" in log and "image AUROC" in log


def test_resume_after_interrupt_does_not_refit(tiny_root, tmp_path):
    out, log = tmp_path / "out", str(tmp_path / "fits.log")
    # (bottle, a) finishes, then (bottle, b) is interrupted like a Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(
            tiny_root, models=[("a", PixelDeviation(log=log)), ("b", Interrupting())], out=out
        )
    kept = load_results(out)
    assert list(zip(kept.category, kept.model, kept.status)) == [("bottle", "a", "ok")]
    assert read_log(log) == ["bottle"]

    results = run_benchmark(
        tiny_root, models=[("a", PixelDeviation(log=log)), ("b", PixelDeviation())], out=out
    )
    assert (results.status == "ok").all()
    assert len(results) == 4
    assert read_log(log) == ["bottle", "grid"]  # (bottle, a) was not fitted again
    assert len(load_results(out)) == 4
    # a third run has nothing to do; a changed configuration runs again
    run_benchmark(tiny_root, models=[("a", PixelDeviation(log=log))], out=out)
    assert read_log(log) == ["bottle", "grid"]
    run_benchmark(
        tiny_root, models=[("a", PixelDeviation(size=16, log=log))], out=out, categories="grid"
    )
    assert read_log(log) == ["bottle", "grid", "grid"]
    # ROC figures are rebuilt from the saved scores of every finished job
    assert (out / "plots/roc/bottle.png").is_file()


def test_failing_model_is_recorded_and_others_finish(tiny_root, tmp_path, temp_register):
    temp_register("test-broken-factory", lambda: 1 / 0, "factory raises")
    temp_register(
        "test-broken-features",
        lambda: IsolationForest(random_state=0),
        "featurizer raises",
        featurizer=BrokenFeaturizer,
    )
    out = tmp_path / "out"
    models = [
        ("good", PixelDeviation()),
        ("bad", Failing(fail_on=("grid",))),
        "test-broken-factory",
        "test-broken-features",
    ]
    results = run_benchmark(tiny_root, models=models, out=out).set_index(["category", "model"])
    assert results.loc[("bottle", "good"), "status"] == "ok"
    assert results.loc[("grid", "good"), "status"] == "ok"
    assert results.loc[("bottle", "bad"), "status"] == "ok"
    failed = results.loc[("grid", "bad")]
    assert failed.status == "error" and np.isnan(failed.image_auroc)
    assert "ValueError: boom on grid" in failed.error
    assert "boom on grid" in (out / "errors" / "grid__bad.txt").read_text()
    assert "ZeroDivisionError" in results.loc[("bottle", "test-broken-factory"), "error"]
    assert (out / "errors" / "bottle__test-broken-factory.txt").is_file()
    assert "featurizer exploded" in results.loc[("grid", "test-broken-features"), "error"]
    summary = (out / "summary.md").read_text()
    assert "## Failed jobs" in summary and "boom on grid" in summary
    # a rerun retries the failed jobs only
    again = run_benchmark(
        tiny_root, models=[("good", PixelDeviation()), ("bad", Failing(fail_on=()))], out=out
    )
    assert (again.status == "ok").all()


def test_features_computed_once_and_cached(tiny_root, tmp_path, temp_register):
    log = str(tmp_path / "features.log")
    for name, factory in [
        ("test-if", lambda random_state: IsolationForest(random_state=random_state)),
        ("test-svm", OneClassSVM),
    ]:
        temp_register(name, factory, "test", featurizer=lambda log=log: CountingLoader(log=log))
    out = tmp_path / "out"
    first = run_benchmark(tiny_root, models=["test-if", "test-svm"], out=out)
    # one train + one test transform per category, shared by the two detectors
    assert sorted(read_log(log)) == ["bottle", "bottle", "grid", "grid"]
    assert not first.features_cached.any()
    assert first.groupby("category").feature_seconds.nunique().eq(1).all()

    temp_register(
        "test-svm2",
        lambda: OneClassSVM(nu=0.2),
        "test",
        featurizer=lambda log=log: CountingLoader(log=log),
    )
    second = run_benchmark(tiny_root, models=["test-if", "test-svm", "test-svm2"], out=out)
    assert len(read_log(log)) == 4  # read from the disk cache
    assert second.set_index("model").loc["test-svm2", "features_cached"].all()

    # an edited image invalidates that category's entry only
    path = load_mvtec(tiny_root, "grid", split="test").paths[0]
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    temp_register(
        "test-svm3",
        lambda: OneClassSVM(nu=0.3),
        "test",
        featurizer=lambda log=log: CountingLoader(log=log),
    )
    run_benchmark(tiny_root, models=["test-svm3"], out=out)
    assert sorted(read_log(log)[4:]) == ["grid", "grid"]


def test_dask_backend_equals_local(tiny_root):
    distributed = pytest.importorskip("dask.distributed")
    models = ["iforest-pixels", ("pixel-deviation", PixelDeviation())]
    local = run_benchmark(tiny_root, models=models, image_size=32)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        remote = run_benchmark(
            tiny_root,
            models=models,
            image_size=32,
            backend="dask",
            scheduler=cluster.scheduler_address,
        )
    metrics = ["image_auroc", "aupr", "f1_max", "pixel_auroc", "aupro"]
    assert (remote.status == "ok").all()
    pd.testing.assert_frame_equal(
        local[["category", "model", *metrics]], remote[["category", "model", *metrics]]
    )


def test_loky_backend_equals_sequential(tiny_root):
    models = [("pixel-deviation", PixelDeviation()), ("bad", Failing())]
    sequential = run_benchmark(tiny_root, models=models)
    parallel = run_benchmark(tiny_root, models=models, n_jobs=2)
    cols = ["category", "model", "status", "image_auroc", "pixel_auroc", "aupro"]
    pd.testing.assert_frame_equal(sequential[cols], parallel[cols])


def test_argument_errors(tiny_root):
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        run_benchmark(tiny_root, models=["nope"])
    with pytest.raises(ValueError, match="Unknown metric"):
        run_benchmark(tiny_root, models=["iforest-pixels"], metrics=["accuracy"])
    with pytest.raises(ValueError, match="not found"):
        run_benchmark(tiny_root, categories=["zipper"], models=["iforest-pixels"])
    with pytest.raises(ValueError, match="unique"):
        run_benchmark(tiny_root, models=[("a", PixelDeviation()), ("a", PixelDeviation())])
    with pytest.raises(TypeError, match="score_samples"):
        run_benchmark(tiny_root, models={"x": object()})
    with pytest.raises(ValueError, match="backend"):
        run_benchmark(tiny_root, models=["iforest-pixels"], backend="spark")
    with pytest.raises(FileNotFoundError):
        run_benchmark(os.path.join(tiny_root, "missing"), models=["iforest-pixels"])


def test_metric_subset_and_no_output(tiny_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = run_benchmark(
        tiny_root,
        categories="grid",
        models={"pd": PixelDeviation()},
        metrics=["image_auroc", "aupro"],
    )
    assert results.image_auroc.notna().all() and results.aupro.notna().all()
    assert results[["aupr", "f1_max", "pixel_auroc"]].isna().all().all()
    assert os.listdir(tmp_path) == []  # out=None writes nothing


def test_scores_and_maps_from_one_pass_when_the_detector_offers_it(tiny_root):
    results = run_benchmark(
        tiny_root,
        models=[("two-pass", PixelDeviation()), ("one-pass", OnePassDeviation())],
        out=None,
    ).set_index(["model", "category"])
    assert (results.status == "ok").all(), results.error.tolist()
    metrics = ["image_auroc", "aupr", "f1_max", "pixel_auroc", "aupro"]
    pd.testing.assert_frame_equal(
        results.loc["one-pass", metrics], results.loc["two-pass", metrics]
    )
    assert (results.loc["one-pass", "map_seconds"] == 0).all()
    assert (results.loc["two-pass", "map_seconds"] > 0).all()


def test_default_data_is_the_photo_set_and_synthetic_is_available_by_name(
    tmp_path, monkeypatch
):
    from mvtec_sklearn.benchmark import _planning

    monkeypatch.setenv("MVTEC_SKLEARN_DATA", str(tmp_path / "home"))
    tiny = {"n_train": 3, "n_test_good": 2, "n_test_defect": 2, "image_size": 32}
    monkeypatch.setattr(_planning, "PHOTO_DATASET", {**tiny, "categories": ["coins"]})
    monkeypatch.setattr(_planning, "SYNTHETIC_DATASET", {**tiny, "categories": ["grid"]})
    models = [("pd", PixelDeviation())]

    photos = run_benchmark(models=models, out=tmp_path / "photos")
    assert photos.category.tolist() == ["coins"] and (photos.status == "ok").all()
    assert "photos-" in (tmp_path / "photos" / "benchmark.log").read_text()
    synthetic = run_benchmark(models=models, dataset="synthetic")
    assert synthetic.category.tolist() == ["grid"] and (synthetic.status == "ok").all()
    assert sorted(os.listdir(tmp_path / "home"))[0].startswith("photos-")  # generated once each
    assert len(os.listdir(tmp_path / "home")) == 2

    with pytest.raises(ValueError, match="either root or dataset"):
        run_benchmark(tmp_path, models=models, dataset="photos")
    with pytest.raises(ValueError, match="dataset must be one of"):
        run_benchmark(models=models, dataset="mvtec")
