"""Importing the light subpackages does not import torch (a fresh interpreter per check)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TORCH_FREE = [
    "mvtec_sklearn",
    "mvtec_sklearn.analysis",
    "mvtec_sklearn.benchmark",
    "mvtec_sklearn.datasets",
    "mvtec_sklearn.detectors",
    "mvtec_sklearn.features",
    "mvtec_sklearn.metrics",
    "mvtec_sklearn.model_selection",
    "mvtec_sklearn.plotting",
]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_import_does_not_load_torch(module):
    code = (
        f"import sys, {module}\n"
        "print('LOADED', sorted(m for m in ('torch', 'torchvision', 'matplotlib.pyplot') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout


def test_lazy_names_resolve_and_are_listed():
    import mvtec_sklearn.detectors as detectors
    import mvtec_sklearn.features as features

    for package in (detectors, features):
        for name in package.__all__:
            assert getattr(package, name) is not None
            assert name in dir(package)
    assert detectors.KNNDetector.__module__ == "mvtec_sklearn.detectors._knn"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        detectors.Nope  # noqa: B018


def test_resnet18_file_name_is_torchvision_s():
    from torchvision.models import ResNet18_Weights

    from mvtec_sklearn.benchmark._registry import RESNET18_FILE

    assert ResNet18_Weights.DEFAULT.url.endswith("/" + RESNET18_FILE)
