"""The declared minimum versions of the numeric stack really work together.

A fresh virtual environment (``python -m venv``, the current interpreter's
version) gets, from PyPI and as binary wheels only, exactly the lower bound that
``pyproject.toml`` declares for each of :data:`FLOORED` (numpy, scipy,
scikit-learn, pandas, joblib, pillow, tqdm, matplotlib). torch and torchvision
are too heavy to reinstall: the environment sees the current interpreter's
copies only, through a ``.pth`` file that adds one folder holding symlinks to the
top-level modules of torch, torchvision and their own requirements (CUDA
libraries, sympy, ...), none of which is one of the floored packages. The
package is not installed there but put on ``PYTHONPATH`` from this checkout. A
smoke script then imports every subpackage and runs a deep featurizer, a
detector, a scorer, a normal-only grid search with refit, a CV split and an
anomaly ROC display. pyod and scikit-image (only needed by PyODDetector and the
real-photo generator) are not installed there.

Needs PyPI (pip's cache makes reruns faster); skipped when
``MVTEC_SKLEARN_OFFLINE=1``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

#: Distributions installed at their declared lower bound.
FLOORED = ("numpy", "scipy", "scikit-learn", "pandas", "joblib", "pillow", "tqdm", "matplotlib")

SMOKE = textwrap.dedent(
    """
    import json, sys
    import importlib.metadata as md

    def release(version):
        parts = [int(part) for part in version.split(".")[:3]]
        return parts + [0] * (3 - len(parts))

    expected = json.loads(sys.argv[1])
    installed = {name: md.version(name) for name in expected}
    assert all(release(installed[n]) == release(v) for n, v in expected.items()), (installed, expected)

    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import OneClassSVM

    import mvtec_sklearn.analysis, mvtec_sklearn.benchmark, mvtec_sklearn.datasets  # noqa: F401
    from mvtec_sklearn.detectors import KNNDetector
    from mvtec_sklearn.features import DeepFeaturizer, HandcraftedFeaturizer, ImageLoader
    from mvtec_sklearn.metrics import get_scorer, image_auroc
    from mvtec_sklearn.model_selection import NormalOnlyFit, NormalOnlyKFold, normal_only_train_test_split
    from mvtec_sklearn.plotting import AnomalyRocCurveDisplay

    rng = np.random.default_rng(0)
    images = rng.integers(50, 70, size=(24, 16, 16, 3), dtype=np.uint8)
    y = np.r_[np.zeros(18, dtype=int), np.ones(6, dtype=int)]
    images[y == 1, 4:10, 4:10] = 255

    pipe = make_pipeline(ImageLoader(image_size=16, flatten=True), PCA(5), KNNDetector(device="cpu"))
    search = GridSearchCV(NormalOnlyFit(pipe), {"estimator__knndetector__n_neighbors": [2, 3]},
                          scoring="image_auroc", cv=NormalOnlyKFold(3)).fit(images, y)
    assert search.best_score_ > 0.9, search.best_score_
    assert search.best_estimator_.n_normal_ == 18
    scores = cross_val_score(make_pipeline(HandcraftedFeaturizer(), OneClassSVM()), images, y,
                             scoring=get_scorer("aupr"), cv=NormalOnlyKFold(2))
    assert scores.shape == (2,)
    X_train, X_test, y_train, y_test = normal_only_train_test_split(images, y, random_state=0)
    deep = make_pipeline(DeepFeaturizer(weights=None, image_size=32, device="cpu", random_state=0),
                         KNNDetector(n_neighbors=2, device="cpu")).fit(X_train)
    auroc = image_auroc(y_test, -deep.score_samples(X_test))
    display = AnomalyRocCurveDisplay.from_estimator(deep, X_test, y_test)
    assert abs(display.roc_auc - auroc) < 1e-12
    print("SMOKE OK", json.dumps(installed))
    """
)


def declared_floors():
    """``{distribution: lower bound}`` of :data:`FLOORED` from pyproject.toml."""
    if tomllib is None:
        pytest.skip("reading pyproject.toml needs tomllib (Python >= 3.11)")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    floors = {}
    for requirement in project["dependencies"]:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", requirement)
        if match and match.group(1).lower() in FLOORED:
            floors[match.group(1).lower()] = match.group(2)
    assert sorted(floors) == sorted(FLOORED), f"no '>=' lower bound declared for {set(FLOORED) - set(floors)}"
    return floors


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def torch_top_level_modules():
    """Top-level files and folders of torch, torchvision and their requirements (not FLOORED)."""
    seen, todo, tops = set(), ["torch", "torchvision"], set()
    while todo:
        name = _norm(todo.pop())
        if name in seen or name in FLOORED or name in ("setuptools", "pip"):
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            top = file.parts[0]
            if top != ".." and not top.endswith((".dist-info", ".data", ".pth")) and top != "__pycache__":
                tops.add(Path(dist.locate_file(top)))
        todo.extend(
            re.match(r"[A-Za-z0-9_.-]+", req).group(0)
            for req in dist.requires or []
            if "extra ==" not in req
        )
    return sorted(p for p in tops if p.exists())


def test_declared_floors_install_and_run(tmp_path):
    if os.environ.get("MVTEC_SKLEARN_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        pytest.skip("needs PyPI (MVTEC_SKLEARN_OFFLINE is set)")
    floors = declared_floors()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", *(f"{name}=={version}" for name, version in floors.items())],
        capture_output=True, text=True, timeout=900,
    )
    assert pip.returncode == 0, "the declared floors do not install together:\n" + pip.stderr[-3000:]
    shared = tmp_path / "torch_only"
    shared.mkdir()
    for path in torch_top_level_modules():
        (shared / path.name).symlink_to(path)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "zz_torch_only.pth").write_text(str(shared) + "\n")
    smoke = subprocess.run(
        [str(python), "-c", SMOKE, json.dumps(floors)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "PYTHONNOUSERSITE": "1"},
    )
    assert smoke.returncode == 0 and "SMOKE OK" in smoke.stdout, smoke.stdout[-2000:] + smoke.stderr[-5000:]
