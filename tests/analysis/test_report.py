"""write_summary_report and `mvtec-sklearn summary`: every promised file, clear errors."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest

from mvtec_sklearn import cli
from mvtec_sklearn.analysis import _report, to_markdown, write_summary_report


def test_cli_summary_writes_every_file(mvtec_root, tmp_path, capsys):
    out = tmp_path / "summary"
    assert cli.main(["summary", "--root", mvtec_root, "--out", str(out)]) == 0
    assert "report.md" in capsys.readouterr().out
    categories = ["bottle", "carpet", "grid"]
    expected = [
        "report.md",
        *(f"tables/{n}.{e}" for n in ("counts", "features") for e in ("csv", "md")),
        "tables/category_table.csv",
        "tables/image_statistics.csv",
        "tables/channel_histograms.csv",
        "figures/channel_density.png",
        "figures/defect_area_violin.png",
        "figures/correlation_heatmap.png",
        *(f"figures/samples_{c}.png" for c in categories),
        *(f"figures/scatter_{c}.png" for c in categories),
    ]
    for name in expected:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
    report = (out / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert sorted(linked) == sorted(n for n in expected if n.endswith(".png"))
    # sections in the seed report's order
    order = ["Image counts", "Sample images", "Image and defect features", "Channel intensity",
             "Feature relationships", "Anomaly area", "Feature correlations"]
    positions = [report.index(f"## {s}") for s in order]
    assert positions == sorted(positions)
    counts = pd.read_csv(out / "tables" / "counts.csv", index_col=0)
    assert sorted(counts.index) == categories
    stats = pd.read_csv(out / "tables" / "image_statistics.csv")
    assert len(stats) == counts[["train_normal", "test_normal", "test_anomalous"]].to_numpy().sum()
    assert (out / "cache").is_dir()


def test_report_subset_and_second_call_uses_cache(mvtec_root, tmp_path, monkeypatch):
    out = tmp_path / "s"
    path = write_summary_report(mvtec_root, categories=["grid"], out=out)
    assert path == os.path.join(str(out), "report.md")
    counts = pd.read_csv(out / "tables" / "counts.csv", index_col=0)
    assert counts.index.tolist() == ["grid"]
    from mvtec_sklearn.analysis import _statistics

    def fail(*args, **kwargs):
        raise AssertionError("decoded an image although it was cached")

    monkeypatch.setattr(_statistics, "read_image", fail)
    write_summary_report(mvtec_root, categories=["grid"], out=out)


def test_default_root_is_synthetic(mvtec_root, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(_report, "synthetic_root", lambda: calls.append(1) or mvtec_root)
    write_summary_report(None, categories=["bottle"], out=tmp_path / "o", cache_dir=None)
    assert calls == [1]
    assert not (tmp_path / "o" / "cache").exists()


def test_bad_roots(tmp_path, mvtec_root):
    with pytest.raises(FileNotFoundError, match="not found"):
        write_summary_report(tmp_path / "does_not_exist", out=tmp_path / "o")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="No MVTec categories"):
        write_summary_report(empty, out=tmp_path / "o")
    with pytest.raises(ValueError, match="available"):
        write_summary_report(mvtec_root, categories=["nope"], out=tmp_path / "o")


def test_to_markdown():
    table = pd.DataFrame({"n": [1, 20000], "x": [1.5, float("nan")], "ok": [True, False]},
                         index=pd.Index(["a", "b|c"], name="category"))
    text = to_markdown(table, headers={"n": "Count"}, decimals={"x": 1})
    assert text.splitlines() == [
        "| category | Count | x | ok |",
        "|---|---:|---:|---|",
        "| a | 1 | 1.5 | yes |",
        "| b\\|c | 20,000 | – | no |",
    ]


def test_figure_section_draws_or_says_why_not(tmp_path):
    from matplotlib.figure import Figure

    folder = _report._Folder(str(tmp_path))

    def plot(stats):
        if stats is None:
            raise ValueError("no anomalous image has a mask")
        return Figure()

    drawn = _report._figure_section(folder, "Anomaly area", "Text.", plot, "stats", "area_plot")
    assert drawn == ["## Anomaly area", "", "Text.", "", "![area plot](figures/area_plot.png)", ""]
    assert (tmp_path / "figures" / "area_plot.png").stat().st_size > 0
    missing = _report._figure_section(folder, "Anomaly area", "Text.", plot, None, "other")
    assert missing[-2] == "*Not plotted: no anomalous image has a mask*"
    assert not (tmp_path / "figures" / "other.png").exists()


def test_folder_writes_tables_as_csv_and_markdown(tmp_path):
    folder = _report._Folder(str(tmp_path))
    folder.csv(pd.DataFrame({"x": [1]}), "t.csv", index=False)
    folder.markdown("| x |", "t.md")
    assert (tmp_path / "tables" / "t.csv").read_text() == "x\n1\n"
    assert (tmp_path / "tables" / "t.md").read_text() == "| x |\n"
