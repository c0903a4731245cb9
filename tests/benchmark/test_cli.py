"""The `mvtec-sklearn benchmark` and `mvtec-sklearn models` commands."""

import os

import pytest

from mvtec_sklearn.benchmark import MODEL_REGISTRY, load_results
from mvtec_sklearn.cli import main

# LOF with n_neighbors=10 on a handful of training images warns (and uses n - 1)
pytestmark = pytest.mark.filterwarnings("ignore:n_neighbors .* is greater than:UserWarning")


def test_cli_benchmark_writes_report_and_says_where(tiny_root, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "benchmark",
            "--root",
            tiny_root,
            "--categories",
            "grid",
            "--models",
            "iforest-pixels",
            "lof-handcrafted",
            "--out",
            str(out),
            "--image-size",
            "32",
            "--n-jobs",
            "1",
            "--metrics",
            "image_auroc",
            "aupr",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert f"Report written to {os.path.join(str(out), 'summary.md')}" in captured.out
    assert "2 jobs succeeded, 0 failed." in captured.out
    assert (
        "iforest-pixels" in captured.err and "image AUROC" in captured.err
    )  # one log line per job
    results = load_results(out)
    assert sorted(results.model) == ["iforest-pixels", "lof-handcrafted"]
    assert results.f1_max.isna().all() and results.aupr.notna().all()
    assert (out / "summary.md").is_file() and (out / "plots" / "heatmap_image_auroc.png").is_file()


def test_cli_models_lists_registry(capsys):
    assert main(["models"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in MODEL_REGISTRY)
    assert main(["models", "--default"]) == 0
    printed = capsys.readouterr().out
    assert "patchcore" in printed and "ocsvm-pixels" not in printed


def test_cli_benchmark_exits_1_when_a_job_failed(tiny_root, tmp_path, temp_register, capsys):
    from tests.benchmark._estimators import Failing

    temp_register("test-failing", Failing, "fails on grid")
    code = main(["benchmark", "--root", tiny_root, "--models", "test-failing", "--out",
                 str(tmp_path / "o"), "--n-jobs", "1", "--metrics", "image_auroc"])
    assert code == 1
    captured = capsys.readouterr()
    assert "1 jobs succeeded, 1 failed." in captured.out
    assert "1 job(s) failed" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--categories", "nope"], "Categories ['nope'] not found"),
        (["--models", "no-such-model"], "no-such-model"),
    ],
)
def test_cli_benchmark_user_errors_are_one_line(tiny_root, tmp_path, capsys, argv, message):
    code = main(["benchmark", "--root", tiny_root, "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("mvtec-sklearn benchmark: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_benchmark_dataset_choice(monkeypatch, capsys, tmp_path):
    import pandas as pd

    import mvtec_sklearn.benchmark as benchmark

    seen = []

    def fake_run_benchmark(**kwargs):
        seen.append((kwargs["root"], kwargs["dataset"]))
        return pd.DataFrame({"status": ["ok"]})

    monkeypatch.setattr(benchmark, "run_benchmark", fake_run_benchmark)
    out = str(tmp_path / "o")
    assert main(["benchmark", "--out", out]) == 0
    assert main(["benchmark", "--dataset", "synthetic", "--out", out]) == 0
    assert main(["benchmark", "--root", "/data/mvtec", "--out", out]) == 0
    assert seen == [(None, None), (None, "synthetic"), ("/data/mvtec", None)]
    with pytest.raises(SystemExit):
        main(["benchmark", "--root", "/data/mvtec", "--dataset", "photos"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(("dataset", "category"), [(None, "coins"), ("synthetic", "grid")])
def test_cli_generate_writes_the_named_dataset(tmp_path, capsys, dataset, category):
    from mvtec_sklearn.datasets import list_categories

    args = ["generate", "--root", str(tmp_path), "--categories", category, "--image-size", "32",
            "--n-train", "2", "--n-test-good", "1", "--n-test-defect", "2"]
    assert main(args + (["--dataset", dataset] if dataset else [])) == 0
    assert list_categories(str(tmp_path)) == [category]
    assert ("Synthetic" if dataset else "Real-photo") in capsys.readouterr().out
