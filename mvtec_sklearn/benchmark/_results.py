"""The results folder of a benchmark run: its layout, its columns, and how it is written and read.

``out/results.csv`` holds one row per job (:data:`RESULT_COLUMNS`), appended as
each job finishes; ``out/scores/<job>.csv`` the per-image test scores,
``out/maps/<job>.npz`` the anomaly maps of the overlay figures and
``out/errors/<job>.txt`` the tracebacks of failed jobs.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
import traceback
import warnings

import numpy as np
import pandas as pd

from mvtec_sklearn.utils import atomic_write, check_outside_dataset, remove_stale_temporaries
from mvtec_sklearn.utils import safe_filename as slug

#: Metrics the benchmark can compute; the pixel ones only for models with anomaly maps.
METRICS = ("image_auroc", "aupr", "f1_max", "pixel_auroc", "aupro")
PIXEL_METRICS = ("pixel_auroc", "aupro")
#: Metrics that get a bootstrap 95 % confidence interval (columns ``<metric>_low/_high``).
CI_METRICS = ("image_auroc", "pixel_auroc", "aupro")

#: Columns of ``results.csv`` and of the DataFrame :func:`run_benchmark` returns.
RESULT_COLUMNS = [
    "category",
    "model",
    "status",
    *METRICS,
    *(f"{m}_{end}" for m in CI_METRICS for end in ("low", "high")),
    "fit_seconds",
    "predict_seconds",
    "map_seconds",
    "feature_seconds",
    "features_cached",
    "n_train",
    "n_test",
    "n_test_anomalous",
    "input",
    "weights",
    "image_size",
    "random_state",
    "config_id",
    "error",
    "finished_at",
]

#: Columns that name a job or an image. They are read back as the text that was
#: written: a ``config_id`` such as ``"000123456789"`` or ``"123e45678901"`` is no
#: number, and a category named ``"NA"`` is no missing value.
_NAME_COLUMNS = ("category", "model", "config_id", "path", "defect_type")
#: Columns of ``scores/<job>.csv`` and of the DataFrame :func:`load_scores` returns.
_SCORE_COLUMNS = ["category", "model", "config_id", "path", "defect_type", "label",
                  "anomaly_score"]
#: What counts as missing in the other columns (pandas writes NaN as an empty field).
_NA_VALUES = {
    c: ["", "nan", "NaN"] for c in (*RESULT_COLUMNS, *_SCORE_COLUMNS) if c not in _NAME_COLUMNS
}

#: Images per row of the anomaly-map figures: the top-scored test images and the
#: worst-missed defective ones (:func:`mvtec_sklearn.plotting.plot_anomaly_grid`).
N_OVERLAY = 4


def _job_stem(category, model, seed=None):
    """File stem of a job's outputs; repeats with another seed (``--seeds``) get a suffix."""
    stem = f"{slug(category)}__{slug(model)}"
    return stem if seed is None else f"{stem}__seed{seed}"


def _error_summary(exc):
    """One line for the ``error`` column: exception type, message and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f" [at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}]"
        if frames
        else ""
    )
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}{where}"


def _atomic_write_csv(frame, path):
    with atomic_write(path, "w") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")


def _read_table(source):
    """``pd.read_csv`` of a results or scores table (names as text, see ``_NAME_COLUMNS``)."""
    return pd.read_csv(source, dtype=dict.fromkeys(_NAME_COLUMNS, str), keep_default_na=False,
                       na_values=_NA_VALUES)


def _read_rows(path):
    """The complete, well-formed rows of a results file, and how many were damaged.

    A row is complete when its line ends with a newline (rows are appended one
    whole line per write) and has as many fields as the header.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    text = data.decode("utf-8", errors="replace")
    complete, _, tail = text.rpartition("\n")
    damaged = int(bool(tail.strip()))  # a last line without its newline was cut short
    try:
        records = list(csv.reader(io.StringIO(complete)))
    except csv.Error as exc:
        raise ValueError(f"Cannot parse the results file {path!r}: {exc}") from exc
    if not records:
        return None, [], damaged
    header, body = records[0], records[1:]
    if "category" not in header or "model" not in header:
        raise ValueError(
            f"{path!r} is not a results file of run_benchmark (header {header[:4]}...)."
        )
    status = header.index("status") if "status" in header else None
    good = []
    for record in body:
        if not record:
            continue
        if len(record) != len(header) or (
            status is not None and record[status] not in ("ok", "error")
        ):
            damaged += 1
            continue
        good.append(record)
    return header, good, damaged


def load_results(out: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``results.csv`` from a benchmark output folder (latest row per job).

    Parameters
    ----------
    out : str or os.PathLike
        Output folder of :func:`run_benchmark`, or the path of a results CSV file.

    Returns
    -------
    DataFrame
        Columns :data:`RESULT_COLUMNS`; empty when the file does not exist.

    Raises
    ------
    ValueError
        If the file is not a results file or cannot be parsed (the message
        names it).

    Warns
    -----
    UserWarning
        When damaged rows (a line cut short by a killed run, or with the wrong
        number of fields) were skipped; the message names the file.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.benchmark import load_results
    >>> load_results(tempfile.mkdtemp()).empty
    True
    """
    path = os.fspath(out)
    if os.path.isdir(path):
        path = os.path.join(path, "results.csv")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    header, records, damaged = _read_rows(path)
    if damaged:
        warnings.warn(
            f"Skipped {damaged} damaged row(s) of the results file {path!r} (cut short or "
            "malformed, e.g. by a killed run); those jobs will be run again.",
            UserWarning,
            stacklevel=2,
        )
    if header is None:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *records])
    buffer.seek(0)
    frame = _read_table(buffer)
    frame = frame.reindex(columns=RESULT_COLUMNS)
    return frame.drop_duplicates(
        subset=["category", "model", "config_id"], keep="last"
    ).reset_index(drop=True)


def load_scores(out: str | os.PathLike[str], results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-image test scores saved by :func:`run_benchmark` (for ROC curves after a resumed run).

    Parameters
    ----------
    out : str or os.PathLike
        Output folder of :func:`run_benchmark`.
    results : DataFrame, default=None
        Keep only the scores of these (successful) rows, matched on category,
        model and configuration; by default all saved scores.

    Returns
    -------
    DataFrame
        Columns ``category, model, config_id, path, defect_type, label, anomaly_score``.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.benchmark import load_scores
    >>> load_scores(tempfile.mkdtemp()).empty
    True
    """
    folder = os.path.join(os.fspath(out), "scores")
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    frames = [_read_scores(os.path.join(folder, f)) for f in files if f.endswith(".csv")]
    scores = (pd.concat(frames, ignore_index=True) if frames
              else pd.DataFrame(columns=_SCORE_COLUMNS))
    if results is not None:
        ok = results[results["status"] == "ok"][["category", "model", "config_id"]]
        scores = scores.merge(ok, on=["category", "model", "config_id"], how="inner")
    return scores.reindex(columns=_SCORE_COLUMNS)


def _read_scores(path):
    try:
        return _read_table(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"Cannot parse the scores file {path!r}: {exc}") from exc


class _Outputs:
    """Everything written into ``out`` while jobs finish (main process only).

    ``overlay(saved, path)`` draws a job's anomaly-map figure from its saved
    maps as soon as they are written (the report draws the missing ones).
    """

    def __init__(self, out, root=None, overlay=None):
        self.overlay = overlay
        self.out = None if out is None else check_outside_dataset(out, root, what="out")
        if self.out is not None:
            for sub in ("", "scores", "maps", "errors"):
                os.makedirs(os.path.join(self.out, sub), exist_ok=True)
            for sub in ("", "scores", "maps", "errors", "plots", "plots/roc", "plots/maps"):
                remove_stale_temporaries(os.path.join(self.out, sub))
        self.results_path = None if self.out is None else os.path.join(self.out, "results.csv")

    def previous(self):
        if self.out is None:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        previous = load_results(self.out)
        if os.path.isfile(self.results_path):
            _atomic_write_csv(previous, self.results_path)  # normalised columns, one row per job
        return previous

    def log(self, line):
        if self.out is not None:
            with open(os.path.join(self.out, "benchmark.log"), "a") as fh:
                fh.write(f"{_dt.datetime.now().isoformat(timespec='seconds')} {line}\n")

    def save_job(self, job, result):
        """Write the job's scores, maps and traceback, then append its row.

        The row comes last, so a row in results.csv implies its files exist.
        """
        if self.out is None:
            return
        row, data = result["row"], job.data
        stem = _job_stem(job.category, job.model, job.seed)
        if result["scores"] is not None:
            frame = pd.DataFrame(
                {
                    "category": job.category,
                    "model": job.model,
                    "config_id": row["config_id"],
                    "path": data.test_paths,
                    "defect_type": data.defect_type,
                    "label": data.target,
                    "anomaly_score": result["scores"],
                }
            )
            _atomic_write_csv(frame, os.path.join(self.out, "scores", f"{stem}.csv"))
        if result["maps"] is not None:
            keep, maps = result["maps"]
            with atomic_write(os.path.join(self.out, "maps", f"{stem}.npz")) as fh:
                np.savez_compressed(
                    fh,
                    maps=maps,
                    index=keep,
                    paths=np.asarray([data.test_paths[i] for i in keep]),
                    mask_paths=np.asarray(
                        [
                            "" if data.mask_paths[i] is None else os.fspath(data.mask_paths[i])
                            for i in keep
                        ]
                    ),
                    label=data.target[keep],
                    anomaly_score=result["scores"][keep],
                    config_id=np.asarray(row["config_id"]),
                    title=np.asarray(f"{job.category} — {job.model}"),
                )
            self.draw_overlay(stem)
        if result["traceback"]:
            self.write_traceback(job.category, job.model, result["traceback"])
        self.append(row)

    def draw_overlay(self, stem):
        """Draw the job's anomaly-map figure now, while the workers go on (the report reuses it)."""
        if self.overlay is None:
            return
        try:
            self.overlay(
                os.path.join(self.out, "maps", f"{stem}.npz"),
                os.path.join(self.out, "plots", "maps", f"{stem}.png"),
            )
        except Exception as exc:  # a figure must never cost a result; the report retries it
            self.log(f"could not draw plots/maps/{stem}.png: {_error_summary(exc)}")

    def write_traceback(self, category, model, trace):
        if self.out is not None:
            path = os.path.join(self.out, "errors", f"{_job_stem(category, model)}.txt")
            with atomic_write(path, "w") as fh:
                fh.write(trace)

    def append(self, row):
        """Append ``row`` to results.csv as one whole line in one write.

        The file is opened with ``O_APPEND`` and the line, newline included, goes
        out in a single ``os.write``: a run killed at any moment leaves either
        the whole row or a last line without its newline, which
        :func:`load_results` skips.
        """
        if self.out is None:
            return
        frame = pd.DataFrame([row]).reindex(columns=RESULT_COLUMNS)
        fd = os.open(self.results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            new = os.fstat(fd).st_size == 0
            data = frame.to_csv(header=new, index=False, lineterminator="\n").encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)

