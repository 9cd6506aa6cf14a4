"""The model registry's logic: versions, their verdicts, and which one production runs.

Versions live in git as GTO tags (``model@v1.2.0``; stage ``model#prod#N``);
models/production.json names the version that serving loads. The stage layer
reads tags and files; everything here works on the plain records it builds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import semver
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops.errors import CheckFailed, UsageError

ARTIFACT = "model"
PROD = "prod"
FIRST_VERSION = "v1.0.0"
Bump = Literal["major", "minor", "patch"]

_MD5 = re.compile(r"^[0-9a-f]{32}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class VersionRecord:
    """One registered model version, as the git tags and its commit's files describe it."""

    version: str
    commit: str
    active: bool  # False once deprecated (GTO deregistration, ``model@vX.Y.Z!``)
    in_prod: bool  # GTO's ``prod`` stage is assigned to it
    gate_passed: bool | None  # reports/gate.json at its commit; None: no readable report
    model_md5: str | None  # the model's md5 in its commit's dvc.lock
    model_stage: str | None  # the dvc.yaml stage that produces the model
    metrics: Mapping[str, float] = field(default_factory=dict)
    created_at: str = ""
    # The metrics its gate judged it by (see ``key_metrics``), what listings show.
    key_metrics: tuple[str, ...] = ()

    @property
    def functional(self) -> bool:
        """Safe to serve again: its gate passed, it is not deprecated, its bytes are known."""
        return self.active and self.gate_passed is True and self.model_md5 is not None


class Manifest(BaseModel):
    """models/production.json: the version production serves and the hash of its bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    version: str
    git_revision: str
    model_md5: str
    metrics: dict[str, Any] = Field(strict=False)
    promoted_at: str
    # The model's own single-row predict time {"p50", "p95", "rows"} (ms) on the machine
    # that promoted it: the baseline `mlops monitor` compares serving latency with, here
    # because a fresh checkout (a CI runner) has no reports/runs/. None: not measured.
    latency_ms: dict[str, float] | None = Field(default=None, strict=False)

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if _semver(value) is None:
            raise ValueError("expected a version like v1.2.0")
        return value

    @field_validator("git_revision")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not _SHA.match(value):
            raise ValueError("expected a 40-character git commit id")
        return value

    @field_validator("model_md5")
    @classmethod
    def _md5(cls, value: str) -> str:
        if not _MD5.match(value):
            raise ValueError("expected a 32-character md5")
        return value

    @field_validator("promoted_at")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        datetime.fromisoformat(value)
        return value


def parse_manifest(document: Any, source: str) -> Manifest:
    """Validate production.json; a corrupt manifest is one UsageError line naming the key."""
    if not isinstance(document, dict):
        raise UsageError(f"{source}: corrupt production manifest (expected a JSON object)")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        detail = str(error["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{source}: corrupt production manifest: {key}: {detail}") from None


def make_manifest(
    record: VersionRecord, now: datetime, latency_ms: Mapping[str, float] | None = None
) -> Manifest:
    if record.model_md5 is None:
        raise CheckFailed(f"{record.version}: its dvc.lock records no model")
    return Manifest(
        version=record.version,
        git_revision=record.commit,
        model_md5=record.model_md5,
        metrics=dict(record.metrics),
        promoted_at=now.isoformat(timespec="seconds"),
        latency_ms=None if latency_ms is None else dict(latency_ms),
    )


# --- versions ------------------------------------------------------------------


def parse_version(version: str) -> semver.Version:
    """``"v1.2.0"`` -> a comparable semantic version; anything else is a UsageError."""
    parsed = _semver(version)
    if parsed is None:
        raise UsageError(f"{version!r}: a version looks like v1.2.0")
    return parsed


def _semver(version: str) -> semver.Version | None:
    if not version.startswith("v"):
        return None
    try:
        return semver.Version.parse(version[1:])
    except ValueError:
        return None


def next_version(existing: Iterable[str], bump: Bump) -> str:
    """The version after the highest registered one (v1.0.0 for the first)."""
    versions = [parse_version(v) for v in existing]
    if not versions:
        return FIRST_VERSION
    return f"v{max(versions).next_version(part=bump)}"


def newest_first(records: Iterable[VersionRecord]) -> list[VersionRecord]:
    return sorted(records, key=lambda r: parse_version(r.version), reverse=True)


def find(records: Sequence[VersionRecord], version: str) -> VersionRecord:
    parse_version(version)
    for record in records:
        if record.version == version:
            return record
    known = ", ".join(r.version for r in newest_first(records)) or "none"
    raise UsageError(f"unknown model version {version} (registered: {known})")


def at_commit(records: Iterable[VersionRecord], commit: str) -> VersionRecord | None:
    return next((r for r in records if r.commit == commit), None)


def with_model(records: Iterable[VersionRecord], md5: str) -> VersionRecord | None:
    """The newest version whose commit records these model bytes."""
    return next((r for r in newest_first(records) if r.model_md5 == md5), None)


def rollback_target(
    records: Sequence[VersionRecord], current: str, requested: str | None
) -> VersionRecord:
    """The version to restore: ``requested``, else the newest functional one older than
    ``current`` (rolling back never jumps forward to a version production never ran)."""
    if requested is not None:
        return _check_requested(find(records, requested), current)
    now = parse_version(current)
    for record in newest_first(records):
        if record.version != current and record.functional and parse_version(record.version) < now:
            return record
    raise CheckFailed(
        f"no functional model version older than {current} to roll back to "
        "(each needs a passed gate, a recorded model and no deprecation); nothing changed"
    )


def _check_requested(record: VersionRecord, current: str) -> VersionRecord:
    if record.version == current:
        raise UsageError(f"{record.version} is already in production; nothing changed")
    if not record.active:
        raise CheckFailed(f"{record.version} is deprecated; refusing to restore it")
    if record.gate_passed is not True:
        verdict = "has no gate report" if record.gate_passed is None else "failed its gate"
        raise CheckFailed(f"{record.version} {verdict}; refusing to restore it")
    if record.model_md5 is None:
        raise CheckFailed(f"{record.version}: its commit's dvc.lock records no model")
    return record


def seconds_to_wait(last_event: int | None, now: float) -> float:
    """GTO orders registry events by their tag's whole-second timestamp: a new event
    must fall in a later second than the last one, or its order would be ambiguous."""
    if last_event is None or now >= last_event + 1:
        return 0.0
    return last_event + 1 - now


# --- what a version's commit records ------------------------------------------------


def model_in_lock(lock: Any, path: str) -> tuple[str, str] | None:
    """(stage name, md5) of the output ``path`` in a parsed dvc.lock, or None."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        return None
    for name, stage in stages.items():
        for out in stage.get("outs", []) if isinstance(stage, dict) else []:
            if (
                isinstance(out, dict)
                and out.get("path") == path
                and _MD5.match(str(out.get("md5")))
            ):
                return str(name), str(out["md5"])
    return None


def gate_verdict(report: Any) -> bool | None:
    """reports/gate.json's ``passed``; None when the report is absent or malformed."""
    if isinstance(report, dict) and isinstance(report.get("passed"), bool):
        return bool(report["passed"])
    return None


def judged_model(report: Any) -> str | None:
    """The md5 of the model the gate judged (its ``candidate.model_md5``), when recorded."""
    candidate = report.get("candidate") if isinstance(report, dict) else None
    md5 = candidate.get("model_md5") if isinstance(candidate, dict) else None
    return md5 if isinstance(md5, str) else None


def failed_checks(report: Any) -> list[str]:
    checks = report.get("checks", []) if isinstance(report, dict) else []
    return [
        str(c.get("name"))
        for c in checks
        if isinstance(c, dict) and str(c.get("verdict", "")).lower() in ("fail", "failed")
    ]


def key_metrics(report: Any, metrics: Mapping[str, float]) -> tuple[str, ...]:
    """The metrics a version was judged by, from its gate report: the target metric
    (``metric``: evaluate.metric, whatever the task), then each metric a check bounded
    (``minimum.<name>``, ``max_degradation.<name>``...), in the report's order; only
    names that ``metrics`` (its reports/metrics.json) holds, so no task's metric is
    assumed."""
    if not isinstance(report, dict):
        return ()
    checks = report.get("checks")
    names = [report.get("metric")] + [
        str(check.get("name", "")).partition(".")[2]
        for check in (checks if isinstance(checks, list) else [])
        if isinstance(check, dict)
    ]
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n in metrics))


def describe_metrics(record: VersionRecord) -> str:
    """``roc_auc 0.9295, pr_auc 0.8345``: a version's key metrics, for one line of output."""
    shown = ", ".join(f"{name} {record.metrics[name]:.4f}" for name in record.key_metrics)
    return shown or "none recorded by its gate"


def numeric_metrics(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


# --- the listing -----------------------------------------------------------------


def listing(records: Iterable[VersionRecord], production: Manifest | None) -> list[dict[str, Any]]:
    """One row per version, newest first: what `mlops registry` shows."""
    serving = production.version if production else None
    return [
        {
            "version": r.version,
            "stage": PROD if r.in_prod else "",
            "serving": r.version == serving,
            "status": "active" if r.active else "deprecated",
            "gate": {True: "passed", False: "failed", None: "missing"}[r.gate_passed],
            "commit": r.commit,
            "model_md5": r.model_md5,
            "created_at": r.created_at,
            "key_metrics": list(r.key_metrics),
            "metrics": dict(r.metrics),
        }
        for r in newest_first(records)
    ]


def format_listing(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table; the metric columns are the versions' key metrics (what their
    gates judged), newest version's first: the whole metrics.json is in ``--json``."""
    metric_names = list(dict.fromkeys(name for row in rows for name in row["key_metrics"]))
    header = ["version", "stage", "status", "gate", "commit", *metric_names]
    table = [header] + [_listing_cells(row, metric_names) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def _listing_cells(row: Mapping[str, Any], metric_names: Sequence[str]) -> list[str]:
    stage = row["stage"] + ("*" if row["serving"] else "")
    metrics = [f"{row['metrics'][m]:.4f}" if m in row["metrics"] else "-" for m in metric_names]
    return [row["version"], stage or "-", row["status"], row["gate"], row["commit"][:7], *metrics]


def disagreement(records: Iterable[VersionRecord], production: Manifest | None) -> str | None:
    """A warning when the GTO prod stage and models/production.json name different versions."""
    tagged = sorted(r.version for r in records if r.in_prod)
    named = [production.version] if production else []
    if tagged == named:
        return None
    return (
        f"GTO assigns prod to {', '.join(tagged) or 'no version'} but models/production.json "
        f"names {named[0] if named else 'none'}"
    )
