"""`mvtec-sklearn fit / predict / export`: the user story end to end, and its errors."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import f1_score

from mvtec_sklearn.cli import main
from mvtec_sklearn.datasets import load_mvtec, make_mvtec_like
from mvtec_sklearn.deploy import load_model
from mvtec_sklearn.metrics import f1_max


@pytest.fixture(scope="module")
def tile_root(tmp_path_factory):
    # a texture: its cracks and spots must be outlined by a mask threshold calibrated on good images
    root = tmp_path_factory.mktemp("tile96")
    make_mvtec_like(root, categories=["tile"], n_train=16, n_test_good=8, n_test_defect=16,
                    image_size=96, random_state=0)
    return str(root)


@pytest.fixture(scope="module")
def fitted_patchcore(tile_root, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "m.joblib")
    assert main(["fit", "patchcore", "--root", tile_root, "--category", "tile",
                 "--save", path, "--image-size", "96", "--quiet"]) == 0
    return path


def _read_mask(path):
    return np.asarray(Image.open(path)) > 0


def test_fit_predict_writes_every_output_and_masks_reach_best_f1(
        tile_root, fitted_patchcore, tmp_path, capsys):
    out = tmp_path / "preds"
    test_dir = os.path.join(tile_root, "tile", "test")
    assert main(["predict", fitted_patchcore, test_dir, "--out", str(out), "--quiet"]) == 0
    assert "Scored 24 images" in capsys.readouterr().out
    test = load_mvtec(tile_root, "tile", "test")
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(scores.path) == sorted(test.paths)
    model, meta = load_model(fitted_patchcore, with_metadata=True)
    assert meta["training"]["n_images"] == 16 and meta["source"]["category"] == "tile"
    truth, predicted = [], []
    for path, mask_path in zip(test.paths, test.mask_paths):
        name = os.path.splitext(os.path.relpath(path, test_dir))[0] + ".png"
        assert (out / "overlays" / name).is_file()
        predicted.append(_read_mask(out / "masks" / name))
        truth.append(np.zeros(predicted[-1].shape, bool) if mask_path is None else _read_mask(mask_path))
    truth, predicted = np.stack(truth), np.stack(predicted)
    best = f1_max(truth.ravel(), model.anomaly_map(test.paths).ravel())[0]
    assert f1_score(truth.ravel(), predicted.ravel()) >= best - 0.05


def test_export_then_predict_with_the_exported_file(tile_root, fitted_patchcore, tmp_path):
    pytest.importorskip("onnx")
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", fitted_patchcore, "--out", str(onnx_path)]) == 0
    some = load_mvtec(tile_root, "tile", "test").paths[:3]
    assert main(["predict", str(onnx_path), *some, "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["predict", fitted_patchcore, *some, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = pd.read_csv(tmp_path / "a" / "scores.csv"), pd.read_csv(tmp_path / "b" / "scores.csv")
    np.testing.assert_allclose(a.anomaly_score, b.anomaly_score, atol=1e-4)
    assert (a.decision == b.decision).all() and (a.threshold == b.threshold).all()
    for name in os.listdir(tmp_path / "b" / "masks"):
        np.testing.assert_array_equal(_read_mask(tmp_path / "a" / "masks" / name),
                                      _read_mask(tmp_path / "b" / "masks" / name))


def test_fit_on_a_folder_with_params_and_a_factory(tmp_path, image_paths, capsys):
    folder = os.path.dirname(image_paths[0])
    path = tmp_path / "iforest.joblib"
    assert main(["fit", "iforest-pixels", "--train", folder, "--save", str(path),
                 "--image-size", "16", "--param", "n_estimators=7", "--quiet"]) == 0
    model = load_model(path)
    params = model.estimator_.get_params()
    assert [v for k, v in params.items() if k.endswith("n_estimators")] == [7]
    assert model.pixel_threshold_ is None  # no maps, no pixel threshold
    factory = tmp_path / "my_factory.py"
    factory.write_text(
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.ensemble import IsolationForest\n"
        "from mvtec_sklearn.features import ImageLoader\n"
        "def build():\n"
        "    return make_pipeline(ImageLoader(image_size=8), IsolationForest(random_state=0))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["fit", "my_factory:build", "--train", folder, "--save", str(path),
                     "--no-calibration", "--quiet"]) == 0
    finally:
        sys.path.remove(str(tmp_path))
    assert type(load_model(path)).__name__ == "Pipeline"


@pytest.mark.parametrize("argv, message", [
    (["fit", "nope", "--train", "{folder}", "--save", "{tmp}/m.joblib"], "Unknown model 'nope'"),
    (["fit", "iforest-pixels", "--train", "{folder}", "--save", "{tmp}/m.joblib",
      "--param", "bogus=1"], "Unknown parameter 'bogus'"),
    (["fit", "iforest-pixels", "--root", "{folder}", "--save", "{tmp}/m.joblib"], "--category"),
    (["fit", "iforest-pixels", "--train", "{tmp}/missing", "--save", "{tmp}/m.joblib"],
     "No such file or folder"),
    (["predict", "{tmp}/missing.joblib", "{folder}"], "No model file"),
])
def test_user_errors_exit_2_with_one_line(argv, message, image_paths, tmp_path, capsys):
    folder = os.path.dirname(image_paths[0])
    argv = [a.format(folder=folder, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_imports_no_torch():
    code = ("import sys\nfrom mvtec_sklearn.cli import _build_parser\n"
            "for c in ('fit', 'predict', 'export'):\n"
            "    try:\n        _build_parser().parse_args([c, '--help'])\n"
            "    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
