"""The one input converter of the analysis functions."""

import pandas as pd
import pytest
from sklearn.utils import Bunch

from mvtec_sklearn.analysis import PROVENANCE_COLUMNS
from mvtec_sklearn.analysis._frames import _as_frame, _missing


def test_paths_bunches_and_frames_become_one_provenance_frame(tmp_path):
    paths = [tmp_path / "a.png", str(tmp_path / "b.png")]
    frame = _as_frame(paths)
    assert list(frame.columns) == ["path", *(c for c in PROVENANCE_COLUMNS if c != "path")]
    assert frame["path"].tolist() == [str(p) for p in paths]
    assert frame["category"].isna().all()

    one = pd.DataFrame({"path": ["x.png"], "category": ["grid"]})
    two = Bunch(frame=pd.DataFrame({"path": ["y.png"], "category": ["pill"]}))
    both = _as_frame([one, two])
    assert both[["path", "category"]].values.tolist() == [["x.png", "grid"], ["y.png", "pill"]]
    assert _as_frame({"frame": one})["category"].tolist() == ["grid"]
    assert "mask_path" not in one  # the input is not modified


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("one.png", "single path"),
        ([], "no images"),
        (pd.DataFrame({"file": ["a.png"]}), "needs a 'path' column"),
        (42, "got int"),
    ],
)
def test_unusable_input_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        _as_frame(bad)


def test_missing_means_none_nan_or_na_but_not_a_path():
    assert _missing(None) and _missing(float("nan")) and _missing(pd.NA)
    assert not _missing("") and not _missing("mask.png")
