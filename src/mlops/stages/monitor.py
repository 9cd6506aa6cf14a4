"""Command ``mlops monitor``: judge production's logged predictions against the reference.

The window is the production model's rows (models/production.json names the
version) of the prediction log (params.yaml ``serve.log_dir``), by time
(``--since`` / ``--until``) and/or the last ``--last N`` rows; the reference is
models/reference.json as committed with that model (the working tree's copy when
it profiles the production model, else the one at the production revision), so
neither the training data nor the DVC cache is needed. ``--labels`` joins late
outcomes (``request_id`` and the target column) to the logged answers.

Writes reports/monitoring/ (monitoring.json, .md, .html; history.jsonl gains a
line) and exits 0 (no breach), 1 (a breach: the summary names the checks) or 2
(bad input: an empty window, a labels file with unknown or duplicate ids, a
reference that is not the production model's; one line, nothing written).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import PATHS, Params
from mlops.errors import CheckFailed, UsageError
from mlops.io import files, git, runs
from mlops.release.manifest import read_production
from mlops.release.registry import Manifest

if TYPE_CHECKING:
    from mlops.monitoring.checks import Ages, Labels
    from mlops.monitoring.logs import LogWindow
    from mlops.tasks.task import Task

SUMMARY = "check production's logged predictions against the reference -> reports/monitoring/"
HISTORY = "history.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_moment, help="rows logged at or after (ISO 8601)")
    parser.add_argument("--until", type=_moment, help="rows logged before (ISO 8601)")
    parser.add_argument("--last", type=_positive, metavar="N", help="only the last N rows")
    parser.add_argument(
        "--labels",
        type=Path,
        help="a data file (CSV, Parquet, Feather, JSON): request_id and the target column",
    )
    parser.add_argument("--logs", type=Path, help="prediction log folder (default: serve.log_dir)")
    parser.add_argument(
        "--reference",
        type=Path,
        help=f"reference profile (default: {PATHS.reference} as committed with production)",
    )
    # Not "out": the CLI checks an option of that name as a file to write.
    parser.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        default=PATHS.monitoring_dir,
        metavar="DIR",
        help="report folder (default: %(default)s)",
    )


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-03-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    manifest = read_production()
    if manifest is None:
        raise UsageError(
            f"{PATHS.production} not found: no model in production to monitor "
            "(promote one first: `mlops promote`)"
        )
    source, document = _reference_document(args.reference, manifest)
    logs_dir = args.logs or Path(params.serve.log_dir)
    sources = _log_sources(logs_dir)
    if args.labels is not None:
        files.require_file(args.labels, "labels file")
    # Imported once params and inputs are checked (see mlops.cli): pandas, scipy, matplotlib.
    from mlops.monitoring import checks, logs
    from mlops.monitoring.reference import load_reference
    from mlops.tasks.task import get_task

    reference = load_reference(document, source)
    task = get_task(params.data.task)
    _fits(reference, manifest, task, source)
    window = logs.read_window(
        sources,
        list(reference["features"]),
        list(reference["prediction"]["columns"]),
        logs.Window(args.since, args.until, args.last, manifest.version),
        what=f"prediction log {logs_dir}",
    )
    labels = None if args.labels is None else _labels(args.labels, params, task, window, sources)
    facts = checks.Facts(
        labels, _ages(manifest), _latency_baseline(manifest), params.evaluate.metric
    )
    found = checks.findings(window, reference, task, params.monitor, facts, seed=params.seed)
    result = _document(window, args, found)
    _write(args.out_dir, result, reference, window)
    breached = [f.check for f in found if f.breach]
    what = f"model {manifest.version}, {window.counts.rows} rows"
    where = args.out_dir / "monitoring.md"
    if breached:
        raise CheckFailed(f"{what}: breach: {', '.join(breached)} (see {where})")
    print(f"mlops monitor: {what}: no breach (see {where})")


def _reference_document(given: Path | None, manifest: Manifest) -> tuple[str, Any]:
    """(where, parsed JSON) of the reference: ``given``, else the working tree's when it
    profiles the production model, else the one committed with that model."""
    if given is not None:
        return str(given), files.read_json(given, "reference profile")
    path = PATHS.reference
    local = files.read_json(path, "reference profile") if path.is_file() else None
    if isinstance(local, dict) and local.get("model_md5") in (None, manifest.model_md5):
        return str(path), local
    committed = git.file_at(manifest.git_revision, path)
    if committed is not None:
        where = f"{path} at {manifest.git_revision[:12]}"
        try:
            return where, json.loads(committed)
        except ValueError:
            raise UsageError(f"{where}: reference profile is not valid JSON") from None
    if local is not None:
        return str(path), local  # _fits names the mismatch
    raise UsageError(f"{path}: reference profile not found (run `dvc repro`, or give --reference)")


def _fits(reference: dict[str, Any], manifest: Manifest, task: Task, source: str) -> None:
    """The reference must profile the production model, of params.yaml's task."""
    if reference["task"] != task.name:
        raise UsageError(
            f"{source}: profiles a {reference['task']} model, but params.yaml data.task is "
            f"{task.name!r}"
        )
    md5 = reference.get("model_md5")
    if md5 is not None and md5 != manifest.model_md5:
        raise UsageError(
            f"{source}: profiles model {md5}, not production's {manifest.model_md5} "
            f"({manifest.version}); give the production model's reference with --reference"
        )


def _log_sources(folder: Path) -> list[tuple[str, bytes]]:
    """Every JSON-lines file in ``folder``, oldest name first."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: prediction log folder not found (serve.log_dir or --logs)")
    paths = sorted(folder.glob("*.jsonl"))
    if not paths:
        raise UsageError(f"{folder}: no prediction logs (*.jsonl) in it")
    return [(path.name, files.read_bytes(path, "prediction log")) for path in paths]


def _labels(
    path: Path, params: Params, task: Task, window: LogWindow, sources: list[tuple[str, bytes]]
) -> Labels:
    """The labels file joined to the window: every id must be a logged one (in or out of
    the window) and given once; the labels are encoded as training encoded them."""
    import pandas as pd

    from mlops.data.ingestion import normalise_name
    from mlops.io.labels import read_labels
    from mlops.monitoring import checks, logs
    from mlops.monitoring.performance import join_labels

    frame = read_labels(path, params.data)
    target = normalise_name(params.data.target)
    try:
        actual = task.encode_target(frame[target], params.data, target, whole=False)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    # A class the model does not know cannot be scored (its probability is not logged).
    first = checks.scorable_rows(window.outputs)[:1]
    classes = checks.answers(task, window.outputs.iloc[first]).classes
    unknown = sorted(set(actual.astype(str)) - {str(c) for c in classes}) if classes else []
    if unknown:
        raise UsageError(
            f"{path}: label(s) {', '.join(unknown[:5])} in {target!r} are not classes of the "
            f"production model ({', '.join(map(str, classes))})"
        )
    logged = logs.parse_blocks(sources, logs.LogCounts())
    known = logged["request_id"].dropna() if "request_id" in logged else pd.Series(dtype=str)
    positions, joined = join_labels(
        window.meta["request_id"],
        pd.DataFrame({"request_id": frame["request_id"], "actual": actual}),
        known=known.tolist(),
        what=str(path),
    )
    return checks.Labels(positions, joined.to_numpy())


def _ages(manifest: Manifest) -> Ages:
    """Since when the production model and its training data exist: the commits that
    first recorded their md5s in dvc.lock (as ``gate --check`` ages a model); the model's
    promotion time when git does not know it, the data's age unknown then."""
    from mlops.monitoring.checks import Ages

    model_since = git.first_commit_time(manifest.model_md5, PATHS.dvc_lock)
    basis = {"model": f"first commit of its md5 in {PATHS.dvc_lock}"}
    if model_since is None:
        model_since = datetime.fromisoformat(manifest.promoted_at)
        basis["model"] = "promoted_at in models/production.json (not found in git)"
    card = files.parse_yaml_bytes(git.file_at(manifest.git_revision, PATHS.model_card))
    training = card.get("training_data") if isinstance(card, dict) else None
    data_md5 = training.get("md5") if isinstance(training, dict) else None
    data_since = git.first_commit_time(str(data_md5), PATHS.dvc_lock) if data_md5 else None
    basis["data"] = (
        f"first commit of the model card's training data md5 in {PATHS.dvc_lock}"
        if data_since
        else "unknown: no model card with the training data's md5 in git"
    )
    if model_since.tzinfo is None:
        model_since = model_since.replace(tzinfo=UTC)
    return Ages(model_since, data_since, basis, datetime.now(UTC))


def _latency_baseline(manifest: Manifest) -> dict[str, float] | None:
    """The model's own single-row predict time {"p50", "p95"} (ms): as measured when it
    was promoted (the manifest), else by the profile stage on this machine."""
    if manifest.latency_ms is not None:
        return dict(manifest.latency_ms)
    return runs.profiled_latency(manifest.model_md5)


def _document(window: LogWindow, args: argparse.Namespace, found: list[Any]) -> dict[str, Any]:
    from mlops.monitoring.logs import Window

    times = window.meta["logged_at"]
    described = Window(args.since, args.until, args.last, window.version).describe()
    return {
        "monitored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_version": window.version,
        "window": {
            "since": None if args.since is None else args.since.isoformat(),
            "until": None if args.until is None else args.until.isoformat(),
            "last": args.last,
            "describe": described,
            "first_logged": times.min().isoformat() if len(times) else None,
            "last_logged": times.max().isoformat() if len(times) else None,
        },
        "rows": window.counts.rows,
        "counts": window.counts.as_dict(),
        "findings": [f.as_dict() for f in found],
        "breach": any(f.breach for f in found),
    }


def _write(
    out_dir: Path, document: dict[str, Any], reference: dict[str, Any], window: LogWindow
) -> None:
    """monitoring.json, .md and .html, each written whole; then the history line."""
    from mlops.monitoring import report

    history_path = out_dir / HISTORY
    earlier = files.read_optional(history_path)
    row = report.history_row(document)
    history = [*report.parse_history((earlier or b"").decode("utf-8", "replace")), row]
    charts = report.charts(document, reference, window.outputs, history)
    files.write_json(out_dir / "monitoring.json", document)
    files.write_text(out_dir / "monitoring.md", report.markdown(document))
    files.write_text(out_dir / "monitoring.html", report.page(document, charts))
    files.append_text(history_path, json.dumps(row) + "\n")
