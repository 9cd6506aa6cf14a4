"""Command ``mlops respond``: act on what ``mlops monitor`` found.

The policy in params.yaml ``respond`` (``mlops.monitoring.policy``) turns the
findings of reports/monitoring/monitoring.json into one action, and the action is
taken:

- ``rollback``: the last functional version goes back into production (what
  ``mlops rollback`` does);
- ``retrain``: the labelled production rows (the logged inputs joined with
  ``--labels``, the target as labels) become a new DVC-tracked file under
  params.yaml ``data.extra_data``, which the ingest stage appends to the source;
  ``dvc repro`` retrains, the result is committed, and the model is promoted only
  if the gate blessed it and the canary passed; with ``--no-promote`` it stops at
  that commit (the gate's verdict said), for a workflow to propose it as a pull
  request that CD promotes once merged (.github/scripts/monitor.sh);
- ``alert``: reports/monitoring/alert.md says what is broken upstream (a workflow
  turns it into an issue); nothing is retrained on broken data.

Every decision, ``none`` included, is appended to monitoring/decisions.jsonl with
its evidence (the findings that triggered it, the model version, the time, what
was done, the commit the action left) and committed: an audit trail that is only
ever appended to. The same record goes to reports/monitoring/decision.json, for a
script to route on without parsing prose. Exit 0 when the decision was carried
out, 1 when the action failed (production is then unchanged), 2 on bad input
(nothing written).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import PATHS, Params
from mlops.errors import CheckFailed, MlopsError, UsageError, one_line
from mlops.io import dvc, files, git
from mlops.monitoring import policy
from mlops.release import canary, registry
from mlops.release.manifest import read_production
from mlops.release.production import promote_head, roll_back

SUMMARY = "act on monitoring's findings: roll back, retrain or alert (params.yaml respond)"
ALERT = PATHS.monitoring_dir / "alert.md"
DECISION = PATHS.monitoring_dir / "decision.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--monitoring", type=Path, default=PATHS.monitoring, help="findings (default: %(default)s)"
    )
    parser.add_argument(
        "--labels",
        type=Path,
        help="production rows to retrain on: request_id and the target (CSV, Parquet, JSON...)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be done; change nothing"
    )
    parser.add_argument(
        "--no-promote",
        action="store_true",
        help="retrain: stop at the retrain commit, for review as a pull request (no promotion)",
    )


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    policy.check_config(params.respond, params.data.task)
    monitoring = files.read_json(args.monitoring, "monitoring report (run `mlops monitor`)")
    findings = policy.findings_of(monitoring, str(args.monitoring))
    version = str(monitoring.get("model_version", ""))
    production = read_production()
    labelled = _labelled(params, args.labels, version) if args.labels else None
    now = datetime.now(UTC)
    facts = policy.Facts(
        task=params.data.task,
        now=now,
        promoted_at=_utc(production.promoted_at) if production else None,
        labelled_rows=0 if labelled is None or labelled.exists else labelled.rows,
    )
    decision = policy.decide(findings, params.respond, facts)
    print(_describe(decision))
    if args.dry_run:
        print("dry run: nothing done, nothing recorded")
        return
    record: dict[str, Any] = {
        "decided_at": now.isoformat(timespec="seconds"),
        "model_version": version,
        "production": production.version if production else None,
        "action": decision.action,
        "reasons": decision.reasons,
        "held_back": decision.held_back,
        "findings": decision.findings,
        "monitoring": {"file": str(args.monitoring), "window": monitoring.get("window")},
    }
    try:
        lines = _act(decision, params, labelled, monitoring, promote=not args.no_promote)
    except MlopsError as exc:
        _record({**record, "done": one_line(str(exc)), "ok": False, "commit": git.head()})
        raise CheckFailed(f"respond {decision.action} failed: {exc}") from None
    print("\n".join(lines))
    _record({**record, "done": " ".join(lines), "ok": True, "commit": git.head()})


def _utc(moment: str) -> datetime:
    """An ISO time; without an offset, taken as UTC (what promote writes)."""
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _describe(decision: policy.Decision) -> str:
    held = [f"({note})" for note in decision.held_back]
    why = "; ".join(decision.reasons) or "no rule of respond.policy holds"
    return " ".join([f"decision: {decision.action}: {why}", *held])


def _act(
    decision: policy.Decision,
    params: Params,
    labelled: _Labelled | None,
    monitoring: dict[str, Any],
    *,
    promote: bool,
) -> list[str]:
    if decision.action == "rollback":
        production = read_production()
        if production is None:
            raise CheckFailed(f"{PATHS.production} not found: no model in production")
        judged = monitoring.get("model_version")
        if judged != production.version:
            # Findings about a model production no longer serves (already rolled back, or
            # replaced): rolling back again would throw away a good model.
            return [
                f"the findings are about {judged}, production serves {production.version}: "
                "nothing rolled back (run `mlops monitor` on its logs)"
            ]
        return roll_back(production, None)
    if decision.action == "alert":
        files.write_text(ALERT, _alert(decision, monitoring))
        return [f"alert written to {ALERT}; nothing retrained"]
    if decision.action == "retrain":
        assert labelled is not None  # the policy retrains only with labelled rows
        return _retrain(params, labelled, promote=promote)
    return ["nothing to do"]


# --- the decisions log ----------------------------------------------------------------


def _record(record: dict[str, Any]) -> None:
    """Append one line and commit the log: the earlier lines are kept byte for byte, and
    the file is replaced whole (atomically), so a kill never leaves half a line. The line
    also goes to ``DECISION`` alone, for a script (``commit``: where the action left HEAD,
    e.g. the retrain commit to propose)."""
    before = files.read_optional(PATHS.decisions) or b""
    if before and not before.endswith(b"\n"):
        raise UsageError(f"{PATHS.decisions}: its last line is incomplete; restore it from git")
    line = json.dumps(record, allow_nan=False, default=str) + "\n"
    files.write_bytes(PATHS.decisions, before + line.encode("utf-8"))
    git.commit_file(PATHS.decisions, f"Respond: {record['action']} ({record['decided_at']})")
    files.write_text(DECISION, line)


def _alert(decision: policy.Decision, monitoring: dict[str, Any]) -> str:
    findings = "\n".join(f"- **{f['check']}**: {f.get('summary', '')}" for f in decision.findings)
    reasons = "\n".join(f"- {reason}" for reason in decision.reasons)
    return (
        f"# Monitoring alert: input data broken upstream (model "
        f"{monitoring.get('model_version', '?')})\n\n"
        f"Nothing was retrained: a model trained on broken data would be worse. Fix the "
        f"data upstream, then run `mlops monitor` again.\n\n## Why\n\n{reasons}\n\n"
        f"## Findings\n\n{findings}\n\nWindow: `{json.dumps(monitoring.get('window'))}`\n"
    )


# --- retraining ----------------------------------------------------------------------


class _Labelled:
    """The labelled production rows in the source's shape, and where they go."""

    def __init__(self, frame: Any, path: Path) -> None:
        self.frame = frame
        self.path = path
        self.rows = len(frame)
        # The same rows were added before (the file's name holds their hash): none is new.
        self.exists = path.is_file() or path.with_name(f"{path.name}.dvc").is_file()


def _labelled(params: Params, labels_path: Path, version: str) -> _Labelled:
    """The logged inputs of ``version`` joined with the labels file; a label for a row
    the log does not hold, or given twice, is a UsageError (nothing written)."""
    from mlops.data.ingestion import normalise_name
    from mlops.io.labels import read_labels
    from mlops.monitoring.logs import Window, read_window
    from mlops.monitoring.performance import join_labels
    from mlops.serving.production import read_contract

    target = normalise_name(params.data.target)
    labels = read_labels(labels_path, params.data)
    sources = canary.newest_logs(Path(params.serve.log_dir))
    outputs = canary.logged_outputs(sources, version)
    if outputs is None:
        raise UsageError(f"{params.serve.log_dir}: no logged answers of model {version!r}")
    columns = [c for c in read_contract(params).schema.columns if c != target]
    logged = read_window(sources, columns, outputs, Window(version=version))
    positions, actual = join_labels(
        logged.meta["request_id"],
        labels.rename(columns={target: "actual"}),
        what=str(labels_path),
    )
    frame = logged.inputs.iloc[positions].reset_index(drop=True)
    frame[target] = actual.to_numpy()
    ids = sorted(logged.meta["request_id"].iloc[positions].astype(str))
    digest = hashlib.md5("\n".join(ids).encode(), usedforsecurity=False).hexdigest()[:12]
    day = datetime.now(UTC).date().isoformat()
    return _Labelled(frame, Path(params.data.extra_data) / f"labelled-{day}-{digest}.parquet")


def _retrain(params: Params, labelled: _Labelled, *, promote: bool) -> list[str]:
    """New data version, ``dvc repro``, commit; promote only what the gate blessed
    (not at all without ``promote``: the commit is a proposal, its gate report says)."""
    files.write_parquet(labelled.path, labelled.frame)
    dvc.add(labelled.path)
    dvc.repro()
    # Not reports/monitoring: the monitor's working files, not the model's outputs.
    paths = ["dvc.lock", "reports", ":(exclude)reports/monitoring", "models"]
    git.call("add", "-A", "--", *paths, str(labelled.path.parent))
    git.call("commit", "-q", "-m", f"Retrain with {labelled.rows} labelled production rows")
    done = f"retrained with {labelled.rows} labelled rows ({labelled.path})"
    report = files.read_json(PATHS.gate, "gate report")
    blessed = registry.gate_verdict(report) is True
    failed = ", ".join(registry.failed_checks(report)) or "see the report"
    verdict = "the gate blessed it" if blessed else f"the gate refused it ({failed})"
    if not promote:
        return [f"{done}; {verdict}; not promoted (--no-promote)"]
    if not blessed:
        raise CheckFailed(f"{done}; {verdict}: nothing promoted")

    def check() -> str | None:
        result = canary.run(params, PATHS.model)
        if result is not None and not result.passed:
            raise CheckFailed(f"{done}; {result.summary}: nothing promoted")
        return result.summary if result else None

    def baseline() -> dict[str, float] | None:
        return canary.baseline_latency(params, PATHS.model)

    return [done, *promote_head(None, "minor", check, baseline)]
