"""Every script in examples/ runs end to end with its ``--quick`` settings.

The scripts are imported and their ``main(argv)`` called in this process (one
torch import for all of them) on the session's tiny synthetic dataset.
``examples/grid_search.py`` has its own test in tests/examples/.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_tested():
    tested = {"grid_search", "explore_dataset", "classical_detectors", "autoencoder_vae",
              "patchcore_overlays", "full_benchmark", "use_from_another_project",
              "deploy_detector"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_explore_dataset(mvtec_root, tmp_path):
    report = load_example("explore_dataset").main(["--quick", "--root", mvtec_root, "--out", str(tmp_path)])
    text = Path(report).read_text()
    assert "bottle" in text
    assert (tmp_path / "samples_bottle.png").stat().st_size > 0


def test_classical_detectors(mvtec_root):
    results = load_example("classical_detectors").main(["--quick", "--root", mvtec_root])
    assert len(results) == 8
    assert set(results["detector"]) == {"ocsvm", "iforest", "knn", "lof"}
    assert results[["image_auroc", "aupr"]].apply(lambda c: c.between(0, 1)).all().all()


def test_autoencoder_vae(mvtec_root):
    results = load_example("autoencoder_vae").main(["--quick", "--root", mvtec_root])
    assert list(results.index) == ["autoencoder", "vae"]
    assert (results["epochs_run"] >= 1).all() and (results["epochs_run"] <= 2).all()
    assert results[["image_auroc", "pixel_auroc"]].apply(lambda c: c.between(0, 1)).all().all()


def test_patchcore_overlays(mvtec_root, tmp_path):
    result = load_example("patchcore_overlays").main(["--quick", "--root", mvtec_root, "--out", str(tmp_path)])
    # pretrained EfficientNet-Lite0 patch features separate the synthetic bottle defects
    assert result["image_auroc"] >= 0.8
    assert 0.5 < result["pixel_auroc"] <= 1
    assert 0 <= result["aupro"] <= 1
    for key in ("grid", "overlays"):
        assert os.path.getsize(result[key]) > 0


def test_full_benchmark(mvtec_root, tmp_path):
    example = load_example("full_benchmark")
    results = example.main(["--quick", "--root", mvtec_root, "--categories", "bottle", "--out", str(tmp_path)])
    assert sorted(results["model"].unique()) == sorted(example.QUICK_MODELS)
    assert set(results["category"]) == {"bottle"}
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    padim = results[results["model"] == "padim"]
    assert np.isfinite(padim["pixel_auroc"]).all()
    assert "padim" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "results.csv").exists()


def test_use_from_another_project(mvtec_root, tmp_path):
    model_file = tmp_path / "model.joblib"
    auroc = load_example("use_from_another_project").main(
        ["--quick", "--root", mvtec_root, "--model-file", str(model_file)])
    assert 0 <= auroc <= 1
    assert model_file.stat().st_size > 0


@pytest.mark.parametrize("name", ["explore_dataset", "classical_detectors", "autoencoder_vae",
                                  "patchcore_overlays", "full_benchmark", "use_from_another_project"])
def test_example_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_example(name).main(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_deploy_detector(mvtec_root, tmp_path):
    result = load_example("deploy_detector").main(
        ["--quick", "--root", mvtec_root, "--out", str(tmp_path)])
    table = result["scores"]
    assert len(table) == 10 and (tmp_path / "predictions" / "scores.csv").is_file()
    assert len(list((tmp_path / "predictions" / "masks").rglob("*.png"))) == 10
    assert 0 <= result["pixel_f1"] <= 1
    assert set(result["exported"]) == {"torchscript", "onnx"}
    assert max(result["max_gap"].values()) <= 1e-4
