"""Build the sdist and wheel, install the wheel into a fresh venv, use it from outside the repo.

How the fresh environment gets its dependencies without network: ``.venv`` is
itself a venv, so ``--system-site-packages`` would only expose the base
interpreter's packages, not torch & co. Instead the new venv is created from
``.venv``'s *base* interpreter (``sys._base_executable``) without pip, the wheel
is installed into it with ``.venv``'s pip (``pip --python NEW_VENV install
--no-deps --no-index WHEEL``), and a ``.pth`` file in the new venv's
site-packages appends ``.venv``'s site-packages to ``sys.path``. A path line in
a ``.pth`` file adds the folder but does not run the ``.pth`` files inside it,
so the editable install of the checkout in ``.venv`` stays inactive and the
package imported is the one from the wheel (asserted below).

The build runs on a copy of the source tree (``--no-isolation``: no network),
so that nothing is written into the checkout.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(cmd, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "mvtec_sklearn", src / "mvtec_sklearn", ignore=ignore)
    for name in ("pyproject.toml", "setup.cfg", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src])
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(out.iterdir())
    return wheels[0], sdists[0]


def test_wheel_contents_and_metadata(dist):
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = email.message_from_bytes(zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "mvtec_sklearn/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "docs/", "benchmarks/"))]
    for sub in ("datasets", "analysis", "features", "detectors", "detectors/_nn", "metrics", "model_selection",
                "plotting", "benchmark", "utils"):
        assert f"mvtec_sklearn/{sub}/__init__.py" in names
    assert metadata["Name"] == "mvtec-sklearn"
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata["Requires-Python"] == ">=3.10"
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert {u.split(",")[0] for u in metadata.get_all("Project-URL")} >= {"Homepage", "Documentation", "Issues"}
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    requires = metadata.get_all("Requires-Dist")
    assert any(r.startswith("torch") and "<3" in r for r in requires)
    assert "mvtec-sklearn = mvtec_sklearn.cli:main" in entry_points


def test_sdist_contents(dist):
    _, sdist = dist
    with tarfile.open(sdist) as tf:
        names = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    assert {"pyproject.toml", "README.md", "LICENSE", "mvtec_sklearn/py.typed", "mvtec_sklearn/cli.py"} <= set(names)


def test_wheel_installs_and_runs_outside_the_repo(dist, tmp_path, mvtec_root):
    wheel, _ = dist
    env_dir = tmp_path / "venv"
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", env_dir])
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel])
    new_site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    (Path(new_site) / "_repo_venv_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"            # a folder outside the repository
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    info = json.loads(run([python, "-c", (
        "import json, mvtec_sklearn, mvtec_sklearn.detectors, numpy as np;"
        "from mvtec_sklearn.detectors import KNNDetector;"
        "X = np.random.default_rng(0).normal(size=(30, 4));"
        "d = KNNDetector(n_neighbors=3, device='cpu').fit(X);"
        "print(json.dumps({'file': mvtec_sklearn.__file__, 'version': mvtec_sklearn.__version__,"
        " 'pred': d.predict(np.array([[0.0] * 4, [50.0] * 4])).tolist()}))")], cwd=work, env=env))
    assert Path(info["file"]).is_relative_to(env_dir), info["file"]
    assert info["version"] == "0.1.0" and info["pred"] == [1, -1]

    script = bindir / "mvtec-sklearn"
    assert "benchmark" in run([script, "--help"], cwd=work, env=env)
    assert "patchcore" in run([script, "models"], cwd=work, env=env)

    example = work / "use_from_another_project.py"
    shutil.copy(REPO / "examples" / "use_from_another_project.py", example)
    out = run([python, example, "--quick", "--root", mvtec_root, "--model-file", work / "m.joblib"], cwd=work, env=env)
    assert "image AUROC" in out

    # The package's own tests pass against the installed wheel (a representative
    # subset: data layer, metrics, model selection, featurizers), run from a copy
    # of the tests outside the repository so that only the wheel is importable.
    shutil.copytree(REPO / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.cfg", work / "setup.cfg")
    out = run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/datasets", "tests/metrics",
         "tests/model_selection", "tests/features"],
        cwd=work, env=env,
    )
    assert " passed" in out and " failed" not in out
