"""The ten failure cases of the reliability probe, one test (or a few) each.

Each case used to give a silent wrong answer or an unhelpful crash; now it
gives the correct result, or a clear error or warning that names the file or
argument.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mvtec_sklearn.benchmark import load_results, load_scores, run_benchmark
from mvtec_sklearn.benchmark._cache import FeatureCache
from mvtec_sklearn.benchmark._results import RESULT_COLUMNS, _job_stem
from mvtec_sklearn.datasets import (
    DatasetCache,
    check_image_input,
    load_images,
    load_mvtec,
    make_mvtec_like,
    read_mask,
    save_cache,
)
from mvtec_sklearn.detectors import KNNDetector, PatchCoreDetector
from tests._data import file_states
from tests.benchmark._estimators import PixelDeviation, read_log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def small_root(tmp_path):
    root = make_mvtec_like(tmp_path / "data", categories=["tile"], n_train=4, n_test_good=2,
                           n_test_defect=2, image_size=32, random_state=0)
    return str(root)


# 1. ------------------------------------------------------------------------------------
def test_1_single_image_without_batch_axis_is_an_error():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for check in (load_images, check_image_input):
        with pytest.raises(ValueError, match=r"single \(H, W, C\) image.*X\[np.newaxis\]"):
            check(image)
    det = PatchCoreDetector(backbone="resnet18", weights=None, image_size=32, device="cpu",
                            random_state=0).fit(np.stack([image] * 4))
    with pytest.raises(ValueError, match=r"\(32, 32, 3\)"):
        det.score_samples(image)
    assert det.score_samples(image[None]).shape == (1,)


# 2. ------------------------------------------------------------------------------------
def test_2_truncated_feature_cache_is_recomputed_with_a_warning(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.save("k", {"train": np.ones((3, 2))}, seconds=1.0)
    path = tmp_path / "k.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"k\.npz.*damaged"):
        assert cache.load("k") is None


def test_2_feature_cache_file_stores_and_checks_its_key(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.save("a", {"train": np.zeros((2, 2))})
    cache.save("b", {"train": np.ones((2, 2))})
    shutil.copy(tmp_path / "a.npz", tmp_path / "b.npz")  # swapped by hand
    with pytest.warns(UserWarning, match=r"b\.npz.*holds key 'a'"):
        assert cache.load("b") is None
    assert cache.load("a")["train"].sum() == 0


def test_2_stale_temporaries_are_removed(tmp_path, small_root, image_paths):
    from mvtec_sklearn.analysis import image_statistics

    stale = tmp_path / ".tmp-999999999-abc.npz"  # no such process
    stale.write_bytes(b"half")
    FeatureCache(tmp_path)
    assert not stale.exists()

    stale.write_bytes(b"half")
    DatasetCache(tmp_path).load(load_mvtec(small_root, "tile"), image_size=16)
    assert not stale.exists()

    image_statistics(image_paths[:1], cache_dir=tmp_path / "stats")
    (entry,) = [d for d, _, files in os.walk(tmp_path / "stats") if files]
    stale = os.path.join(entry, ".tmp-999999999-x.npz")
    open(stale, "wb").close()
    image_statistics(image_paths[:1], cache_dir=tmp_path / "stats")
    assert not os.path.exists(stale)


def test_2_benchmark_survives_a_truncated_feature_cache(mvtec_root, tmp_path):
    kwargs = dict(categories=["bottle"], models=["iforest-pixels"], image_size=16,
                  metrics=["image_auroc"], out=tmp_path / "out")
    first = run_benchmark(mvtec_root, **kwargs)
    for name in os.listdir(tmp_path / "out" / "cache"):
        path = tmp_path / "out" / "cache" / name
        path.write_bytes(path.read_bytes()[:100])
    os.remove(tmp_path / "out" / "results.csv")
    with pytest.warns(UserWarning, match="Feature cache file .* is damaged"):
        again = run_benchmark(mvtec_root, **kwargs)
    assert (again.status == "ok").all() and len(again) == 1
    assert again.image_auroc.iloc[0] == first.image_auroc.iloc[0]


def test_2_truncated_dataset_cache_is_rebuilt_with_a_warning(small_root, tmp_path):
    cache = DatasetCache(tmp_path / "cache")
    data = load_mvtec(small_root, "tile", split="test")
    first = cache.load(data, image_size=16)
    raw = open(first.cache_path, "rb").read()
    with open(first.cache_path, "wb") as fh:
        fh.write(raw[:200])
    with pytest.warns(UserWarning, match=os.path.basename(first.cache_path)):
        again = cache.load(data, image_size=16)
    assert not again.from_cache
    np.testing.assert_array_equal(again.images, first.images)
    assert cache.load(data, image_size=16).from_cache


# 3. ------------------------------------------------------------------------------------
def _results_file(tmp_path, n=3):
    rows = [
        {"category": f"c{i}", "model": "m", "status": "ok", "image_auroc": 0.5 + i / 10,
         "config_id": f"id{i}", "finished_at": "2026-01-01T00:00:00"}
        for i in range(n)
    ]
    path = tmp_path / "results.csv"
    pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS).to_csv(path, index=False)
    return path


def test_3_a_row_cut_at_any_byte_is_skipped_with_a_warning(tmp_path):
    path = _results_file(tmp_path)
    full = path.read_bytes()
    last_row_start = full.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last_row_start + 1, len(full) - 1):
        path.write_bytes(full[:cut])
        with pytest.warns(UserWarning, match=r"results\.csv"):
            frame = load_results(path)
        assert list(frame.category) == ["c0", "c1"], cut
        assert frame.config_id.notna().all() and (frame.status == "ok").all()
    path.write_bytes(full)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_results(path)) == 3


def test_3_every_cut_of_the_file_loads(tmp_path):
    path = _results_file(tmp_path, n=2)
    full = path.read_bytes()
    for cut in range(len(full) + 1):
        path.write_bytes(full[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = load_results(path)
        assert frame.config_id.notna().all() and frame.status.isin(["ok", "error"]).all()


def test_3_unparsable_results_name_the_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text('a,"b\nc,d\n')
    with pytest.raises(ValueError, match=r"results\.csv"):
        load_results(path)


def test_3_rows_are_appended_whole_and_a_damaged_tail_is_rerun(mvtec_root, tmp_path):
    out = tmp_path / "out"
    kwargs = dict(categories=["bottle", "grid"], models=["iforest-pixels"], image_size=16,
                  metrics=["image_auroc"], out=out)
    run_benchmark(mvtec_root, **kwargs)
    text = (out / "results.csv").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 3
    (out / "results.csv").write_text(text[: len(text) - 20])  # a kill inside the last row
    with pytest.warns(UserWarning, match="damaged row"):
        again = run_benchmark(mvtec_root, **kwargs)
    assert (again.status == "ok").all() and len(again) == 2
    assert len(load_results(out)) == 2


# 4. ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, ext", [("I;16", "png"), ("I;16", "tif"), ("I", "tif")])
def test_4_deep_masks_with_small_values_keep_their_pixels(tmp_path, mode, ext):
    mask = np.zeros((40, 30), np.uint16)
    mask[5:11, 3:20] = 1  # 102 defect pixels stored as 1
    path = tmp_path / f"mask.{ext}"
    image = Image.fromarray(mask.astype(np.int32 if mode == "I" else np.uint16))
    assert image.mode == mode
    image.save(path)
    assert int(read_mask(path).sum()) == 102
    assert read_mask(path, size=(20, 15)).sum() > 0


# 5. ------------------------------------------------------------------------------------
def _numpy_peak(func):
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_5_patchcore_decodes_at_the_network_size(tmp_path):
    rng = np.random.default_rng(0)
    det = PatchCoreDetector(backbone="resnet18", weights=None, image_size=32, device="cpu",
                            random_state=0, batch_size=8)
    det.fit(rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    big = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(big)
    paths = [str(big)] * 8
    peak = _numpy_peak(lambda: det.score_samples(paths))
    native_batch = 8 * 512 * 512 * 3 * 4  # the float32 batch at native size
    assert peak < 0.25 * native_batch, peak


def test_5_deep_maps_are_built_per_batch(tmp_path):
    from mvtec_sklearn.detectors import AutoencoderDetector

    rng = np.random.default_rng(0)
    det = AutoencoderDetector(image_size=32, max_epochs=1, batch_size=4, device="cpu",
                              random_state=0).fit(rng.uniform(size=(4, 32, 32, 3)))
    big = rng.integers(0, 256, (8, 384, 384, 3), dtype=np.uint8)
    peak = _numpy_peak(lambda: det.anomaly_map(big))
    output = 8 * 384 * 384 * 4
    native_float = 8 * 384 * 384 * 3 * 4
    assert peak < output + 0.25 * native_float, peak


# 6. ------------------------------------------------------------------------------------
def test_6_output_names_of_distinct_categories_differ(tmp_path):
    root = make_mvtec_like(tmp_path / "data", categories=["tile"], n_train=3, n_test_good=2,
                           n_test_defect=2, image_size=32, random_state=0)
    shutil.copytree(os.path.join(root, "tile"), os.path.join(root, "cat a"))
    os.rename(os.path.join(root, "tile"), os.path.join(root, "cat_a"))
    assert _job_stem("cat a", "m") != _job_stem("cat_a", "m")
    out = tmp_path / "out"
    results = run_benchmark(root, models={"dev": PixelDeviation(size=16)}, out=out,
                            metrics=["image_auroc"])
    assert (results.status == "ok").all()
    scores = load_scores(out, results)
    assert sorted(scores.category.unique()) == ["cat a", "cat_a"]
    assert len(os.listdir(out / "plots" / "roc")) == 2


def test_6_names_that_look_like_numbers_or_missing_values_are_read_back_as_written(
    tmp_path, monkeypatch
):
    # config_id is a 12-digit hex hash: about 1 in 140 look like a number to
    # pandas ("000123456789", "123e45678901"); categories may be named "NA" or "007"
    from mvtec_sklearn.benchmark import _planning

    ids = {"NA": "000123456789", "007": "123e45678901"}
    monkeypatch.setattr(_planning, "_config_id", lambda *args: ids[args[-1]])
    root = make_mvtec_like(tmp_path / "data", categories=["tile"], n_train=3, n_test_good=2,
                           n_test_defect=2, image_size=32, random_state=0)
    shutil.copytree(os.path.join(root, "tile"), os.path.join(root, "007"))
    os.rename(os.path.join(root, "tile"), os.path.join(root, "NA"))
    out, log = tmp_path / "out", str(tmp_path / "fits.log")
    run = lambda: run_benchmark(root, models={"dev": PixelDeviation(size=16, log=log)},  # noqa: E731
                                out=out, metrics=["image_auroc"])
    results = run()
    kept = load_results(out)
    assert sorted(zip(kept.category, kept.config_id)) == sorted(
        (c, i) for c, i in ids.items()
    )
    scores = load_scores(out, results)
    assert sorted(scores.category.unique()) == ["007", "NA"]
    assert len(scores) == 8
    run()  # both jobs are found finished: nothing is fitted again
    assert sorted(read_log(log)) == ["007", "NA"]


# 7. ------------------------------------------------------------------------------------
def test_7_no_output_inside_the_dataset(small_root, tmp_path):
    from mvtec_sklearn.analysis import write_summary_report

    before = file_states(small_root)
    inside = os.path.join(small_root, "tile", "test")
    with pytest.raises(ValueError, match="out .* lies inside the dataset folder"):
        run_benchmark(small_root, models={"dev": PixelDeviation(size=16)}, out=inside)
    with pytest.raises(ValueError, match="cache_dir .* lies inside the dataset folder"):
        run_benchmark(small_root, models={"dev": PixelDeviation(size=16)},
                      out=tmp_path / "out", cache_dir=os.path.join(small_root, "cache"))
    with pytest.raises(ValueError, match="out .* lies inside the dataset folder"):
        write_summary_report(small_root, out=os.path.join(small_root, "summary"))
    assert file_states(small_root) == before
    assert load_mvtec(small_root, "tile", split="test").defect_type.tolist().count("plots") == 0


def test_7_symlinked_category_is_protected(small_root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(os.path.join(small_root, "tile"), elsewhere)
    os.symlink(elsewhere, os.path.join(small_root, "tile"))
    before = file_states(elsewhere)
    data = load_mvtec(small_root, "tile", split="test")
    with pytest.raises(ValueError, match="cache_dir .* lies inside the dataset folder"):
        DatasetCache(elsewhere / "cache").load(data, image_size=16)
    with pytest.raises(ValueError, match="out .* lies inside the dataset folder"):
        run_benchmark(small_root, models={"dev": PixelDeviation(size=16)},
                      out=elsewhere / "test" / "out")
    assert file_states(elsewhere) == before


def test_7_cli_refuses_an_out_inside_the_dataset(small_root, capsys):
    from mvtec_sklearn.cli import main

    before = file_states(small_root)
    out = os.path.join(small_root, "tile", "x")
    assert main(["summary", "--root", small_root, "--out", out]) == 2
    err = capsys.readouterr().err
    assert "lies inside the dataset folder" in err and len(err.strip().splitlines()) == 1
    assert file_states(small_root) == before


# 8. ------------------------------------------------------------------------------------
class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_8_summary_cache_never_unpickles(tmp_path, image_paths):
    from mvtec_sklearn.analysis import image_statistics

    cache = tmp_path / "cache"
    expected = image_statistics(image_paths[:2], cache_dir=cache)
    files = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs]
    assert len(files) == 2
    marker = tmp_path / "code_ran"
    for path in files:
        with open(path, "wb") as fh:
            pickle.dump(_Planted(str(marker)), fh)
    with pytest.warns(UserWarning, match="cache file"):
        again = image_statistics(image_paths[:2], cache_dir=cache)
    assert not marker.exists()
    pd.testing.assert_frame_equal(again, expected)


# 9. ------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine", "manhattan"])
def test_9_knn_distances_of_huge_features_do_not_overflow(metric):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(30, 16)).astype(np.float32)
    test = np.vstack([train[:3] + 0.01, -5 * train[3:6]]).astype(np.float32)
    small = KNNDetector(n_neighbors=3, metric=metric).fit(train)
    huge = KNNDetector(n_neighbors=3, metric=metric).fit(train * np.float32(1e20))
    scores = huge.score_samples(test * np.float32(1e20))
    assert np.isfinite(scores).all()
    factor = {"sqeuclidean": 1e40, "cosine": 1.0}.get(metric, 1e20)
    np.testing.assert_allclose(scores, small.score_samples(test) * factor, rtol=1e-3, atol=1e-6)
    np.testing.assert_array_equal(huge.predict(test * np.float32(1e20)), small.predict(test))


# 10. -----------------------------------------------------------------------------------
def test_10_image_id_is_unique_when_stems_are_shared(small_root):
    good = os.path.join(small_root, "tile", "train", "good")
    first = sorted(os.listdir(good))[0]
    Image.open(os.path.join(good, first)).convert("RGB").save(
        os.path.join(good, os.path.splitext(first)[0] + ".jpg"))
    frame = load_mvtec(small_root, "tile", split="all").frame
    assert frame.image_id.is_unique
    stem = os.path.splitext(first)[0]
    assert {f"tile/train/good/{stem}.png", f"tile/train/good/{stem}.jpg"} <= set(frame.image_id)
    assert "tile/train/good/001" in set(frame.image_id)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_10_workers_end_with_a_killed_benchmark(small_root, tmp_path):
    shutil.copytree(os.path.join(small_root, "tile"), os.path.join(small_root, "tile2"))
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from mvtec_sklearn.benchmark import run_benchmark\n"
        "from tests.benchmark._estimators import SleepingFit\n"
        f"run_benchmark({small_root!r}, models={{'sleep': SleepingFit({str(tmp_path)!r})}},\n"
        f"              n_jobs=2, out={str(tmp_path / 'out')!r})\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = [int(f.split("-")[1]) for f in os.listdir(tmp_path)
                       if f.startswith("worker-")]
        assert len(workers) == 2, "the workers did not start"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def alive():
        out = []
        for pid in workers:
            try:
                with open(f"/proc/{pid}/status") as fh:
                    if "zombie" not in fh.read():
                        out.append(pid)
            except FileNotFoundError:
                pass
        return out

    deadline = time.monotonic() + 20  # they used to sleep on for the whole job (120 s)
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left


def test_7_write_report_refuses_the_dataset_given_in_settings(small_root):
    from mvtec_sklearn.benchmark import write_report

    with pytest.raises(ValueError, match="out .* lies inside the dataset folder"):
        write_report(os.path.join(small_root, "report"), settings={"root": small_root})
