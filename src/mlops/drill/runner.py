"""The fire drill, run: a throwaway copy of the project, its model promoted, the
held-out stream replayed batch by batch through the real commands, and a decision
recorded per batch.

The copy is a ``git clone`` of the project's committed HEAD (tags included) that
shares the project's DVC cache (content-addressed: the copy's runs only add objects,
and a second drill restores unchanged stages from DVC's run cache). Everything else
happens in the copy: ``dvc repro``, ``mlops promote``, ``mlops predict`` per batch
(and ``mlops serve``, a real HTTP server on a free loopback port, for a sample of
the first batch), then ``mlops monitor --labels`` and ``mlops respond --labels``.
The mlops commands run in this process (``mlops.cli.main`` in the copy's folder),
so the libraries are imported once; ``dvc repro`` and the server are subprocesses.
The project itself is never written to, except the timeline folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mlops.cli import main
from mlops.config import PARAMS_FILE, PATHS, Params
from mlops.data.ingestion import ingest, normalise_name
from mlops.drill import scenarios, timeline
from mlops.drill.scenarios import Columns, Scenario
from mlops.errors import CheckFailed, UsageError
from mlops.io import dvc, files, git, tables
from mlops.monitoring.checks import answers as prediction_of
from mlops.release.manifest import read_production
from mlops.release.production import promote_head
from mlops.serving.production import read_contract
from mlops.tasks.metrics import get_metric
from mlops.tasks.task import get_task

DEMO_SOURCE = "data/external/adult/adult.data.gz"
DEMO_STREAM = Path("data/external/adult/adult.test.gz")
# --quick: the copy trains on this many source rows with a search of each family at its
# defaults only (tune.start_from_defaults; one trial would be HistGradientBoosting's,
# which trails the logistic baseline on 2,000 rows and fails the gate), and its gate
# does not judge calibration, which so small a search on so few rows does not reach.
QUICK_ROWS = 2500
QUICK_PARAMS: dict[str, Any] = {
    "tune": {"n_trials": 3, "cv_folds": 2},
    "validate": {"importance": {"enabled": False}},
    "impute": {"numeric": "median", "categorical": "most_frequent"},
    "evaluate": {"business": {"correlation_trials": 0}},
    "gate": {"maximum": {"log_loss": None, "ece": None}},
}
SERVE_CHUNK = 25  # rows per HTTP request
SERVE_START_S = 60.0


@dataclass(frozen=True)
class Options:
    root: Path  # the project (its committed HEAD is copied)
    out: Path  # where the timeline goes
    workdir: Path | None  # the copy's parent folder (None: a temporary one, removed)
    stream: Path | None  # the held-out rows (None: the demo's adult.test)
    quick: bool
    batch_rows: int
    clean_batches: int
    per_scenario: int
    scenarios: tuple[str, ...] | None  # in this order (None: every scenario)
    served_rows: int
    copy_params: Mapping[str, Any]  # params.yaml sections merged into the copy's

    def names(self) -> tuple[str, ...]:
        """The scenarios to run, in order."""
        return scenarios.SCENARIOS if self.scenarios is None else self.scenarios


def stream_file(root: Path, params: Params, given: Path | None) -> Path:
    if given is not None:
        files.require_file(given, "stream file (--stream)")
        return given.resolve()
    if params.data.source != DEMO_SOURCE or not (root / DEMO_STREAM).is_file():
        raise UsageError(
            f"data.source is {params.data.source!r}, not the demo's {DEMO_SOURCE} with its "
            f"held-out {DEMO_STREAM}: give the rows to replay with --stream FILE"
        )
    return (root / DEMO_STREAM).resolve()


def check_inputs(options: Options) -> tuple[Params, Path]:
    """Everything the user gave, before any copy is made: one UsageError line each."""
    params = files.load_params(options.root / PARAMS_FILE)
    if params.data.positive_class is None or params.data.negative_class is None:
        raise UsageError(
            f"the drill's scenarios flip binary labels: data.task is {params.data.task!r}, "
            "without data.positive_class and data.negative_class"
        )
    scenarios.check_names(options.names())
    stream = stream_file(options.root, params, options.stream)
    git.head(cwd=options.root)  # a repository with a commit to copy
    if options.workdir is not None and (options.workdir / "project").exists():
        raise UsageError(f"{options.workdir / 'project'} exists: give an empty --workdir")
    return params, stream


def drill(options: Options) -> dict[str, Any]:
    """Run it; the timeline document (also written to ``options.out``)."""
    started = time.perf_counter()
    params, stream_path = check_inputs(options)
    parent = options.workdir or Path(tempfile.mkdtemp(prefix="mlops-drill-"))
    try:
        copy = _make_copy(options, parent / "project")
        with _inside(copy):
            params = _prepare(options)
            reference = _build_and_promote()
            columns = scenarios.choose_columns(
                reference["features"], _importance(), _unbounded(params)
            )
            steps = scenarios.plan(
                options.names(), columns, options.clean_batches, options.per_scenario
            )
            stream = scenarios.Stream(_read_stream(params, stream_path), params.seed)
            work = parent / "batches"
            work.mkdir(parents=True, exist_ok=True)
            batches = _replay(
                params, steps=steps, stream=stream, columns=columns, work=work, options=options
            )
    finally:
        if options.workdir is None:
            shutil.rmtree(parent, ignore_errors=True)
    summaries = timeline.score(batches)
    document = {
        "stream": str(stream_path),
        "quick": options.quick,
        "batch_rows": options.batch_rows,
        "batches_run": len(batches),
        "seconds": round(time.perf_counter() - started, 1),
        "metric": params.evaluate.metric,
        "drift_share_limit": params.monitor.drift.share,
        "metric_limits": _limits(params),
        "columns": asdict(columns),
        "scenarios": summaries,
        "rates": timeline.rates(summaries),
        "batches": batches,
    }
    _write(options.out, document)
    return document


# --- the copy ------------------------------------------------------------------------


def _make_copy(options: Options, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    git.call("clone", "--quiet", str(options.root.resolve()), str(target))
    for key, value in (("user.name", "mlops drill"), ("user.email", "drill@localhost")):
        probe = subprocess.run(["git", "config", key], cwd=target, capture_output=True, check=False)
        if probe.returncode != 0:
            git.call("config", key, value, cwd=target)
    cache = dvc.cache_dir(options.root.resolve())
    _dvc(target, "config", "--local", "cache.dir", str(cache))
    return target


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _dvc(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"dvc {args[0]} in the drill's copy: {detail}")


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, mapping by mapping (other values replaced)."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        both = isinstance(old, Mapping) and isinstance(value, Mapping)
        merged[key] = merge(old, value) if both else value  # type: ignore[arg-type]
    return merged


def _prepare(options: Options) -> Params:
    """The copy's budget and params (--quick, --copy-params), committed."""
    document = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    if options.quick:
        cut_source(Path(document["data"]["source"]), QUICK_ROWS, bool(document["data"]["header"]))
        labelled = {"min_labelled_rows": options.batch_rows}
        document = merge(
            document,
            {**QUICK_PARAMS, "respond": labelled, "monitor": {"performance": labelled}},
        )
    document = merge(document, options.copy_params)
    files.write_text(PARAMS_FILE, yaml.safe_dump(document, sort_keys=False))
    params = files.load_params(PARAMS_FILE)  # a bad --copy-params: one line, here
    _commit("drill: the copy's params")
    return params


def cut_source(path: Path, rows: int, header: bool) -> None:
    """Keep the source's first ``rows`` rows, in its own format (uncompressed: the
    copy's source is read by content, whatever its name)."""
    data = tables.file_bytes(path)
    kind = tables.content_format(data)
    if kind != "csv":
        tables.write_typed(path, tables.typed_frame(path, data, kind).head(rows), kind)
        return
    lines = data.splitlines(keepends=True)
    files.write_bytes(path, b"".join(lines[: rows + int(header)]))


def _commit(message: str) -> None:
    git.call("add", "-A")
    if git.call("status", "--porcelain").strip():
        git.call("commit", "-q", "-m", message)


def _build_and_promote() -> dict[str, Any]:
    """``dvc repro``, commit, ``mlops promote``: production's reference profile."""
    dvc.repro()
    _commit("drill: the model")
    code, said = _mlops("promote")
    if code != 0:
        raise CheckFailed(f"the drill's copy could not promote its model: {_last(said)}")
    return _production_reference()


def _production_reference() -> dict[str, Any]:
    manifest = read_production()
    assert manifest is not None  # promoted just before
    committed = git.file_at(manifest.git_revision, PATHS.reference)
    if committed is None:
        raise CheckFailed(f"{PATHS.reference} is not committed with the production model")
    document: dict[str, Any] = json.loads(committed)
    return document


def _unbounded(params: Params) -> set[str]:
    """The columns the data contract sets no upper bound on (a change of units there
    reaches the model, and only monitoring can catch it; elsewhere the contract refuses)."""
    bounds = {"in_range", "less_than", "less_than_or_equal_to"}
    schema = read_contract(params).schema
    return {
        str(name)
        for name, column in schema.columns.items()
        if not any(check.name in bounds for check in column.checks)
    }


def _importance() -> list[str]:
    """The features by falling permutation importance (the evaluation's), if any."""
    report = files.parse_yaml_bytes(files.read_optional(PATHS.evaluation))
    found = report.get("importance") if isinstance(report, dict) else None
    return [str(row["feature"]) for row in found or [] if isinstance(row, dict)]


def _mlops(*args: str) -> tuple[int, str]:
    """An mlops command in this process (the copy is the working folder): (exit code, output)."""
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = main(list(args))
    return code, said.getvalue()


def _last(said: str) -> str:
    return (said.strip().splitlines() or ["no output"])[-1]


def _read_stream(params: Params, path: Path) -> pd.DataFrame:
    """The held-out rows as ingestion reads the source: typed, the target encoded."""
    return ingest(tables.read_source(params.data, path), params.data)


# --- the replay ----------------------------------------------------------------------


def _replay(
    params: Params,
    *,
    steps: list[Scenario],
    stream: scenarios.Stream,
    columns: Columns,
    work: Path,
    options: Options,
) -> list[dict[str, Any]]:
    target = normalise_name(params.data.target)
    records: list[dict[str, Any]] = []
    for step in steps:
        if step.name == "bad_model":
            _force_bad_release()
        for _ in range(step.batches):
            number = len(records) + 1
            if step.name == "covariate_shift":
                batch = stream.take_shifted(options.batch_rows, columns.shifted)
            else:
                batch = stream.take(options.batch_rows)
            inputs = scenarios.break_inputs(batch.drop(columns=[target]), step.name, columns)
            served = options.served_rows if number == 1 else 0
            if step.name in scenarios.SERVED:
                served = len(inputs)
            since = datetime.now(UTC).isoformat()
            answers = _answer(inputs, served, work / f"batch-{number}")
            actual, flipped = batch[target].to_numpy(), 0
            if step.name == "concept_drift" and answers is not None:
                actual, flipped = _drift_concept(params, batch, actual, answers, columns)
            labels = work / f"labels-{number}.csv"
            record = _judge(
                params,
                step,
                batch=(number, since),
                answers=answers,
                actual=actual,
                labels_path=labels,
            )
            records.append({**record, "flipped_labels": flipped})
            print(
                f"batch {number} ({step.name}): {record['action']} "
                f"(expected {step.expected}){'' if record['ok'] else ' WRONG'}",
                flush=True,
            )
    return records


def _answer(inputs: pd.DataFrame, served: int, stem: Path) -> pd.DataFrame | None:
    """The batch answered: ``served`` rows by the HTTP server, the rest by ``mlops
    predict``; the answers (request_id and the output columns), None if refused."""
    parts = [_serve(inputs.head(served))] if served else []
    if served == len(inputs):
        return parts[0]
    batch_in, batch_out = stem.with_suffix(".parquet"), stem.with_name(f"{stem.name}-out.parquet")
    files.write_parquet(batch_in, inputs.iloc[served:].reset_index(drop=True))
    code, said = _mlops("predict", "--input", str(batch_in), "--output", str(batch_out))
    if code == 2:
        raise CheckFailed(f"mlops predict on {batch_in}: {_last(said)}")
    if code != 0:
        return None  # refused by the contract: logged as a refusal, no answers
    parts.append(pd.read_parquet(batch_out))
    return pd.concat(parts, ignore_index=True)


def _serve(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` answered by a real ``mlops serve`` on a free loopback port, then stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "mlops", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(server, url)
        answered = []
        records = json.loads(rows.to_json(orient="records"))
        for start in range(0, len(records), SERVE_CHUNK):
            body = json.dumps({"rows": records[start : start + SERVE_CHUNK]}).encode()
            request = urllib.request.Request(
                f"{url}/predict", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as reply:
                answered += json.loads(reply.read())["predictions"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return pd.DataFrame(answered)


def _wait_healthy(server: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + SERVE_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"mlops serve stopped at start (exit {server.returncode})")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2):  # 503 until a model loads
                return
        except OSError:
            time.sleep(0.2)
    raise CheckFailed(f"mlops serve was not ready at {url}/ready within {SERVE_START_S:g} s")


def _drift_concept(
    params: Params, batch: pd.DataFrame, actual: np.ndarray, answers: pd.DataFrame, columns: Columns
) -> tuple[np.ndarray, int]:
    """The labels with part of a subgroup's flipped, and how many: as many as bring the
    realised floor metric halfway between the monitor's decay limit and respond's floor."""
    task = get_task(params.data.task)
    name, limit, floor = _floor_metric(params)
    metric = get_metric(name, task.name)
    reference = _production_reference()
    outputs = answers[list(reference["prediction"]["columns"])]
    prediction = prediction_of(task, outputs)
    shifted = batch[columns.shifted]
    subgroup = (shifted >= shifted.quantile(scenarios.SUBGROUP_QUANTILE)).to_numpy()
    order = scenarios.flip_order(subgroup, params.seed)
    goal = scenarios.concept_target(
        float(reference["metrics"][name]), limit, floor, metric.greater_is_better
    )

    def flipped(k: int) -> np.ndarray:
        return scenarios.flip(actual, np.isin(np.arange(len(actual)), order[:k]))

    k = scenarios.flips_for(lambda k: float(metric(flipped(k), prediction)), goal, len(order))
    return flipped(k), k


def _floor_metric(params: Params) -> tuple[str, float, float | None]:
    """(metric, its decay tolerance, its floor): the first floor metric the monitor judges."""
    tolerances = params.monitor.performance.max_degradation.get(params.data.task, {})
    floors = params.respond.performance_floor
    for name, floor in floors.items():
        if name in tolerances:
            return str(name), float(tolerances[name]), floor
    raise UsageError(
        "the concept drift scenario needs a metric with both a respond.performance_floor "
        f"and a monitor.performance.max_degradation.{params.data.task} tolerance"
    )


def _limits(params: Params) -> dict[str, float]:
    """The lines the chart draws: the floor of the timeline's metric."""
    floor = params.respond.performance_floor.get(params.evaluate.metric)
    return {} if floor is None else {"floor": float(floor)}


def _judge(
    params: Params,
    step: Scenario,
    *,
    batch: tuple[int, str],
    answers: pd.DataFrame | None,
    actual: np.ndarray,
    labels_path: Path,
) -> dict[str, Any]:
    """Labels written, ``mlops monitor`` (on what was logged since the batch started)
    then ``mlops respond``: the batch's record."""
    number, since = batch
    with_labels: list[str] = []
    if answers is not None:
        positive, negative = params.data.positive_class, params.data.negative_class
        assert positive is not None  # checked: a binary target
        assert negative is not None
        labels = pd.DataFrame(
            {
                "request_id": answers["request_id"].astype(str),
                params.data.target: np.where(actual == 1, str(positive[0]), str(negative[0])),
            }
        )
        files.write_csv(labels_path, labels)
        with_labels = ["--labels", str(labels_path)]
    monitored, said = _mlops("monitor", "--since", since, *with_labels)
    record: dict[str, Any] = {
        "batch": number,
        "scenario": step.name,
        "change": step.change,
        "rows": len(actual),
        "refused": answers is None,
        "expected": step.expected,
    }
    if monitored == 2:
        return record | _evidence(None, params) | _failed(f"monitor: {_last(said)}")
    monitoring = files.read_json(PATHS.monitoring, "monitoring report")
    before = _decisions()
    responded, said = _mlops("respond", *with_labels)
    after = _decisions()
    if responded == 2 or len(after) == len(before):
        return record | _evidence(monitoring, params) | _failed(f"respond: {_last(said)}")
    decision = after[-1]
    action = str(decision["action"])
    return (
        record
        | _evidence(monitoring, params)
        | {
            "action": action,
            "done": decision.get("done", ""),
            "carried_out": bool(decision.get("ok")),
            "reasons": list(decision.get("reasons") or []) + list(decision.get("held_back") or []),
            "ok": timeline.allowed(step.expected, action),
        }
    )


def _failed(why: str) -> dict[str, Any]:
    """A batch the monitor or respond could not judge (bad input): never a right answer."""
    return {"action": "error", "done": why, "carried_out": False, "reasons": [why], "ok": False}


def _decisions() -> list[dict[str, Any]]:
    text = (files.read_optional(PATHS.decisions) or b"").decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _evidence(monitoring: Mapping[str, Any] | None, params: Params) -> dict[str, Any]:
    """What the timeline shows of a monitoring report."""
    found = {str(f["check"]): f for f in (monitoring or {}).get("findings", [])}

    def evidence(check: str) -> Mapping[str, Any]:
        return found.get(check, {}).get("evidence") or {}

    metric = params.evaluate.metric
    estimated = (evidence("estimated_performance").get("metrics") or {}).get(metric) or {}
    realised = (evidence("performance").get("metrics") or {}).get(metric) or {}
    return {
        "model": (monitoring or {}).get("model_version", "-"),
        "drift_share": evidence("drift").get("share"),
        "prediction_drift": bool(found.get("prediction_drift", {}).get("breach")),
        "estimated": estimated.get("value"),
        "realised": realised.get("value"),
        "breaches": [name for name, f in found.items() if f.get("breach")],
    }


# --- the bad model ---------------------------------------------------------------------


def _force_bad_release() -> None:
    """A botched manual release: a model trained with the labels swapped, its failed
    gate report edited to passed, promoted without the canary; then the params fixed
    (the model stays in production until a response removes it)."""
    original = PARAMS_FILE.read_text(encoding="utf-8")
    document = yaml.safe_load(original)
    data = document["data"]
    data["positive_class"], data["negative_class"] = data["negative_class"], data["positive_class"]
    files.write_text(PARAMS_FILE, yaml.safe_dump(document, sort_keys=False))
    dvc.repro()
    gate = files.read_json(PATHS.gate, "gate report")
    files.write_json(PATHS.gate, {**gate, "passed": True})
    _commit("drill: a model trained on swapped labels, its gate report edited")
    with contextlib.redirect_stdout(io.StringIO()):
        promote_head(None, "minor")
    files.write_text(PARAMS_FILE, original)
    _commit("drill: the label swap fixed in params.yaml (the model is still in production)")


# --- the timeline ----------------------------------------------------------------------


def _write(out: Path, document: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files.write_json(out / "timeline.json", document)
    timeline.chart(document, out / "timeline.png")
    files.write_text(out / "timeline.md", timeline.markdown(document, "timeline.png"))
