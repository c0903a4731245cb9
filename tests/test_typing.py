"""The package type-checks with mypy (settings in setup.cfg)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_package_passes_mypy(tmp_path):
    api = pytest.importorskip("mypy.api")
    # A fresh cache: an incremental run can hide an error in a module it did not re-read.
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "setup.cfg"),
        "--cache-dir", str(tmp_path / "mypy_cache"),
        str(ROOT / "mvtec_sklearn"),
    ])
    assert status == 0, stdout + stderr
    assert "Success" in stdout
