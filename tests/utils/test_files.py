"""Safe file output: atomic writes, the dataset guard, file signatures, stale temporaries, names."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mvtec_sklearn.utils import (
    atomic_path,
    atomic_write,
    check_outside_dataset,
    file_signature,
    remove_stale_temporaries,
    safe_filename,
)


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.csv"]
    with atomic_write(path, "w") as fh:
        fh.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["out.csv"]


def test_atomic_write_creates_the_folder_and_rejects_other_modes(tmp_path):
    with atomic_write(tmp_path / "a" / "b.bin") as fh:
        fh.write(b"\x00")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00"
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "c", "a"):
            pass


def test_atomic_path_names_a_temporary_that_replaces_only_on_success(tmp_path):
    path = tmp_path / "sub" / "model.joblib"
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            name = os.path.basename(tmp)
            assert name.startswith(f".tmp-{os.getpid()}-") and name.endswith(".joblib")
            assert os.path.dirname(tmp) == str(tmp_path / "sub")
            with open(tmp, "w") as fh:
                fh.write("half")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path / "sub") == []
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write("whole")
    assert path.read_text() == "whole" and os.listdir(tmp_path / "sub") == ["model.joblib"]


def test_file_signature_changes_with_the_file(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"12")
    first = file_signature(path)
    assert first.startswith(str(path) + "|") and first.endswith("|2")
    assert file_signature(path) == first
    os.utime(path, ns=(0, 12345))
    assert file_signature(path) == f"{path}|12345|2"
    path.write_bytes(b"123")
    assert file_signature(path).endswith("|3")
    for missing in (tmp_path / "nope.png", tmp_path):
        with pytest.raises(FileNotFoundError, match="File not found"):
            file_signature(missing)


def test_stale_temporaries_only(tmp_path):
    dead = tmp_path / ".tmp-999999999-x.npz"
    live = tmp_path / f".tmp-{os.getpid()}-y.npz"
    other = tmp_path / "entry.npz"
    for p in (dead, live, other):
        p.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [str(dead)]
    assert live.exists() and other.exists()
    os.utime(live, (0, 0))  # older than max_age: stale whatever its process
    assert remove_stale_temporaries(tmp_path) == [str(live)]
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_outside_dataset_guard(tmp_path):
    root = tmp_path / "root"
    (root / "bottle").mkdir(parents=True)
    elsewhere = tmp_path / "disk2" / "grid"
    elsewhere.mkdir(parents=True)
    os.symlink(elsewhere, root / "grid")
    for bad in (root, root / "out", root / "bottle" / "test" / "plots", elsewhere / "x"):
        with pytest.raises(ValueError, match=r"^out .* lies inside the dataset folder"):
            check_outside_dataset(bad, root, what="out")
    os.symlink(root / "bottle", tmp_path / "link")  # a path that resolves into the dataset
    with pytest.raises(ValueError):
        check_outside_dataset(tmp_path / "link" / "out", root)
    assert check_outside_dataset(tmp_path / "root_results", root) == str(tmp_path / "root_results")
    assert check_outside_dataset(root / "out", None) == str(root / "out")


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_safe_filename_is_safe_and_injective(a, b):
    for name in (safe_filename(a), safe_filename(b)):
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name) and name not in (".", "..")
    if a != b:
        assert safe_filename(a) != safe_filename(b)
