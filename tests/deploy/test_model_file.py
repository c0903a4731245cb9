"""save_model / load_model: metadata, atomic writes, errors; predict_images on folders."""

import os

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.ensemble import IsolationForest

from mvtec_sklearn.deploy import (
    SCORE_COLUMNS,
    load_model,
    model_thresholds,
    predict_images,
    save_model,
    training_signature,
)
from mvtec_sklearn.detectors import PaDiMDetector
from mvtec_sklearn.model_selection import CalibratedThresholdDetector


def test_save_and_load_keep_model_thresholds_and_metadata(image_paths, tmp_path):
    det = CalibratedThresholdDetector(
        PaDiMDetector(weights=None, image_size=32, n_features=10, device="cpu", random_state=0),
        pixel_method="fpr", calibration_fraction=0.25, random_state=0).fit(image_paths)
    path = tmp_path / "sub" / "m.joblib"
    meta = save_model(det, path, training_data=image_paths, extra={"note": "x"})
    assert os.listdir(path.parent) == ["m.joblib"]  # no temporary file left
    model, loaded = load_model(path, with_metadata=True)
    assert loaded == meta
    assert meta["threshold"] == det.threshold_ and meta["pixel_threshold"] == det.pixel_threshold_
    assert meta["image_size"] == 32 and meta["note"] == "x"
    assert meta["training"] == training_signature(image_paths)
    assert meta["training"]["n_images"] == 8
    assert {"mvtec_sklearn", "scikit-learn", "torch", "numpy", "python"} <= set(meta["versions"])
    np.testing.assert_array_equal(model.predict(image_paths), det.predict(image_paths))


def test_training_signature_changes_with_content(image_paths, tmp_path):
    copy = tmp_path / os.path.basename(image_paths[0])
    img = np.asarray(Image.open(image_paths[0])).copy()
    Image.fromarray(img).save(copy)
    same = training_signature([str(copy)])["sha256"]
    assert same == training_signature([image_paths[0]])["sha256"]
    img[0, 0, 0] ^= 1
    Image.fromarray(img).save(copy)
    assert training_signature([str(copy)])["sha256"] != same


def test_load_model_plain_joblib_and_errors(tmp_path):
    det = IsolationForest(random_state=0).fit(np.zeros((10, 2)))
    joblib.dump(det, tmp_path / "plain.joblib")
    model, meta = load_model(tmp_path / "plain.joblib", with_metadata=True)
    assert meta == {} and isinstance(model, IsolationForest)
    assert model_thresholds(model) == (-det.offset_, None)
    joblib.dump([1, 2], tmp_path / "list.joblib")
    with pytest.raises(ValueError, match="not a model"):
        load_model(tmp_path / "list.joblib")
    with pytest.raises(FileNotFoundError, match="missing.joblib"):
        load_model(tmp_path / "missing.joblib")


def _write_images(folder, sizes, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for i, (h, w) in enumerate(sizes):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_predict_images_any_size_writes_scores_overlays_masks(image_paths, tmp_path):
    det = CalibratedThresholdDetector(
        PaDiMDetector(weights=None, image_size=32, n_features=10, device="cpu", random_state=0),
        pixel_method="fpr", calibration_fraction=0.25, random_state=0).fit(image_paths)
    inputs = _write_images(tmp_path / "in", [(32, 32), (40, 48), (32, 32), (24, 20)])
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    table = predict_images(det, [tmp_path / "in"], tmp_path / "out", batch_size=1)
    assert list(table.columns) == list(SCORE_COLUMNS)
    assert sorted(table.path) == sorted(inputs)
    on_disk = pd.read_csv(tmp_path / "out" / "scores.csv")
    pd.testing.assert_frame_equal(on_disk, table, check_dtype=False)
    expected = -det.score_samples(list(table.path[:1]))
    assert table.anomaly_score.iloc[0] == pytest.approx(expected[0], rel=1e-6)
    assert set(table.decision) <= {"normal", "anomalous"}
    assert ((table.anomaly_score > det.threshold_) == (table.decision == "anomalous")).all()
    for path in inputs:
        name = os.path.relpath(path, tmp_path / "in")
        overlay = np.asarray(Image.open(tmp_path / "out" / "overlays" / name))
        mask = np.asarray(Image.open(tmp_path / "out" / "masks" / name))
        h, w = np.asarray(Image.open(path)).shape[:2]
        assert overlay.shape == (h, w, 3) and mask.shape == (h, w)
        expected = det.anomaly_map([path])[0] > det.pixel_threshold_
        np.testing.assert_array_equal(mask > 0, expected)
    leftovers = [f for _, _, files in os.walk(tmp_path / "out") for f in files if f.startswith(".tmp")]
    assert leftovers == []


def test_predict_images_errors(tmp_path):
    det = IsolationForest(random_state=0).fit(np.zeros((10, 2)))
    with pytest.raises(FileNotFoundError, match="No such file or folder"):
        predict_images(det, [tmp_path / "nope"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No image files"):
        predict_images(det, [tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(ValueError, match="no threshold"):
        predict_images(object(), [tmp_path / "empty"], tmp_path / "out")
