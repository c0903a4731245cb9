"""Habits of the `mvtec-sklearn` command: one-line user errors, exit codes, help, fast start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mvtec_sklearn
from mvtec_sklearn.cli import _build_parser, main

REPO = Path(__file__).resolve().parents[1]


def _run(*args, **env):
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "mvtec_sklearn.cli", *args], capture_output=True,
                          text=True, env=environ, cwd=REPO, timeout=120)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"mvtec-sklearn {mvtec_sklearn.__version__}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["benchmark", "--n-jobs", "0"], "argument --n-jobs: expected a positive integer, got '0'"),
        (["benchmark", "--image-size", "-5"], "argument --image-size: expected a positive integer"),
        (["benchmark", "--scheduler", "tcp://h:8786"], "--scheduler: only used with --backend dask"),
        (["summary", "--n-jobs", "x"], "argument --n-jobs: expected a positive integer, got 'x'"),
        (["generate"], "the following arguments are required: --root"),
        (["generate", "--root", "d", "--n-test-good", "-1"], "argument --n-test-good: expected an integer >= 0"),
        (["benchmark", "--metrics", "auc"], "argument --metrics: invalid choice: 'auc'"),
    ],
)
def test_bad_options_are_one_line_with_status_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["benchmark", "summary"])
def test_missing_root_is_one_line_with_status_2(command, tmp_path, capsys):
    missing = tmp_path / "does_not_exist"
    assert main([command, "--root", str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mvtec-sklearn {command}: error:") and str(missing) in err
    assert len(err.strip().splitlines()) == 1


def test_every_subcommand_spells_the_dataset_root_and_has_help_for_every_option():
    parser = _build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    reads_a_dataset = {"benchmark", "summary", "generate", "fit"}
    assert reads_a_dataset < set(subparsers)
    for name, sub in subparsers.items():
        options = [a for a in sub._actions if a.dest != "help"]
        assert all(a.help for a in options), f"an option of {name} has no help"
        positional = {a.dest for a in options if not a.option_strings}
        assert not positional & {"root", "dataset", "data"}, f"{name} takes its dataset positionally"
        if name in reads_a_dataset:
            assert any("--root" in a.option_strings for a in options), name


def test_generate_overwrite_and_counts(tmp_path, capsys):
    from mvtec_sklearn.datasets import load_mvtec

    argv = ["generate", "--root", str(tmp_path), "--dataset", "synthetic", "--categories",
            "bottle", "--n-train", "3",
            "--n-test-good", "1", "--n-test-defect", "2", "--image-size", "32"]
    assert main(argv) == 0
    train, test = load_mvtec(tmp_path, "bottle", "train"), load_mvtec(tmp_path, "bottle", "test")
    assert len(train.paths) == 3 and list(test.target).count(0) == 1 and sum(test.target) == 2
    capsys.readouterr()
    assert main(argv) == 2  # the folder exists
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert main([*argv[:-6], "--n-train", "4", "--overwrite"]) == 0
    assert len(load_mvtec(tmp_path, "bottle", "train").paths) == 4


@pytest.mark.parametrize("argv", [["--help"], ["models"]])
def test_help_and_models_import_neither_torch_nor_matplotlib(argv):
    code = (
        "import sys\n"
        "from mvtec_sklearn.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout


def test_console_entry_point_exit_status(tmp_path):
    result = _run("summary", "--root", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
