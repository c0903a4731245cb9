"""The shared test helpers of tests/_data.py."""

import os

from mvtec_sklearn.datasets import list_categories, load_mvtec
from tests._data import file_contents, file_states, tiny_mvtec


def test_tiny_mvtec_counts_and_size(tmp_path):
    root = tiny_mvtec(tmp_path / "data", ["bottle"], n_test_defect=4)
    assert list_categories(root) == ["bottle"]
    test = load_mvtec(root, "bottle", split="test")
    assert test.target.tolist() == [0, 0, 1, 1, 1, 1]
    assert len(load_mvtec(root, "bottle", split="train").paths) == 3


def test_file_contents_and_states_see_every_change(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(b"ab")
    contents, states = file_contents(tmp_path), file_states(tmp_path)
    assert contents == {os.path.join("sub", "a.bin"): b"ab"}
    assert set(states) == {"sub", os.path.join("sub", "a.bin")}
    os.utime(tmp_path / "sub" / "a.bin", ns=(0, 0))
    assert file_states(tmp_path) != states and file_contents(tmp_path) == contents
    (tmp_path / "sub" / "a.bin").write_bytes(b"ac")
    assert file_contents(tmp_path) != contents
