"""The statistics of the benchmark: confidence intervals, seeds, per-type AUROC, paired test, ranks."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import make_pipeline

from mvtec_sklearn.benchmark import load_results, load_scores, run_benchmark
from mvtec_sklearn.features import ImageLoader
from mvtec_sklearn.metrics import bootstrap_ci, image_auroc, per_defect_type_auroc

pytestmark = pytest.mark.filterwarnings("ignore:n_neighbors .* is greater than:UserWarning")


@pytest.fixture(scope="module")
def seeded_run(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("stats")
    models = {
        "iforest": make_pipeline(ImageLoader(image_size=16), IsolationForest(n_estimators=20)),
        "iforest-b": make_pipeline(ImageLoader(image_size=8), IsolationForest(n_estimators=10)),
        "lof-handcrafted": "lof-handcrafted",
    }
    results = run_benchmark(root=tiny_root, models=[(k, v) if k != v else v
                                                    for k, v in models.items()],
                            image_size=32, out=out, seeds=2, n_bootstrap=40,
                            metrics=["image_auroc", "aupr"])
    return out, results


def test_stochastic_models_repeat_per_seed_and_deterministic_ones_run_once(seeded_run):
    _, results = seeded_run
    runs = results.groupby(["category", "model"]).size()
    assert (runs.xs("iforest", level="model") == 2).all()
    assert (runs.xs("lof-handcrafted", level="model") == 1).all()
    seeds = results[results.model == "iforest"].random_state
    assert sorted(set(seeds)) == [0, 1]


def test_intervals_in_results_match_bootstrap_ci(seeded_run):
    out, results = seeded_run
    row = results[(results.model == "iforest") & (results.random_state == 0)].iloc[0]
    scores = load_scores(out, results=results[results.config_id == row.config_id])
    ci = bootstrap_ci(image_auroc, scores.label, scores.anomaly_score, n_resamples=40,
                      random_state=0)
    assert (row.image_auroc_low, row.image_auroc_high) == pytest.approx((ci.low, ci.high))
    assert load_results(out)[["image_auroc_low", "image_auroc_high"]].notna().all().all()


def test_report_shows_intervals_seeds_types_paired_test_and_ranks(seeded_run):
    out, results = seeded_run
    report = (out / "summary.md").read_text()
    for heading in ("Bootstrap 95 % confidence intervals", "Mean ± standard deviation over seeds",
                    "## Image AUROC per defect type", "## Is the best model really better?",
                    "## Mean rank by image AUROC"):
        assert heading in report
    assert (out / "plots" / "ranks_image_auroc.png").is_file()
    first = results[results.random_state == 0]
    scores = load_scores(out, results=first)
    part = scores[(scores.category == "bottle") & (scores.model == "lof-handcrafted")]
    table = per_defect_type_auroc(part.label, part.anomaly_score, part.defect_type)
    for defect_type, value in table.items():
        assert f"| bottle | {defect_type} |" in report
        line = next(li for li in report.splitlines() if li.startswith(f"| bottle | {defect_type} |"))
        assert f"{value:.3f}" in line


def test_seeds_and_bootstrap_are_validated(tiny_root):
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        run_benchmark(root=tiny_root, models=["iforest-pixels"], seeds=0)
