"""The drill's timeline: each batch's evidence and decision, scored per scenario, and
rendered for people (Markdown and a PNG chart).

A batch is right when its action is the scenario's expected one or ``none`` (a clean
batch: only ``none``); a scenario is right when every batch of it is and, for an
injected change, the expected action came at all. Its delay is the number of batches
from the first changed batch to that action (0: the batch that carried the change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops.drill.scenarios import NONE

Batch = Mapping[str, Any]


def allowed(expected: str, action: str) -> bool:
    return action in {expected, NONE}


def score(batches: Sequence[Batch]) -> list[dict[str, Any]]:
    """One summary per scenario, in the order they ran."""
    names = list(dict.fromkeys(str(b["scenario"]) for b in batches))
    summaries = []
    for name in names:
        group = [b for b in batches if b["scenario"] == name]
        expected = str(group[0]["expected"])
        actions = [str(b["action"]) for b in group]
        wrong = [a for a in actions if not allowed(expected, a)]
        summary: dict[str, Any] = {
            "scenario": name,
            "change": group[0].get("change", ""),
            "expected": expected,
            "batches": len(group),
            "actions": actions,
            "wrong": wrong,
        }
        if expected == NONE:
            summary |= {"false_alarms": len(wrong), "ok": not wrong}
        else:
            hits = [i for i, a in enumerate(actions) if a == expected]
            summary |= {
                "detected": bool(hits),
                "delay": hits[0] if hits else None,
                "ok": bool(hits) and not wrong,
            }
        summaries.append(summary)
    return summaries


def rates(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """False alarms per clean batch; injected scenarios answered, and their delays."""
    clean = [s for s in summaries if s["expected"] == NONE]
    injected = [s for s in summaries if s["expected"] != NONE]
    clean_batches = sum(int(s["batches"]) for s in clean)
    alarms = sum(int(s["false_alarms"]) for s in clean)
    detected = [s for s in injected if s["detected"]]
    return {
        "clean_batches": clean_batches,
        "false_alarms": alarms,
        "false_alarm_rate": alarms / clean_batches if clean_batches else None,
        "scenarios": len(injected),
        "detected": len(detected),
        "detection_rate": len(detected) / len(injected) if injected else None,
        "delays": {s["scenario"]: s["delay"] for s in injected},
        "wrong_responses": sum(len(s["wrong"]) for s in summaries),
        "ok": all(s["ok"] for s in summaries),
    }


def _value(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(document: Mapping[str, Any], chart: str | None) -> str:
    """The timeline for people: the verdict, the scenarios, then every batch."""
    totals = document["rates"]
    verdict = "PASSED" if totals["ok"] else "FAILED"
    metric = document.get("metric", "metric")
    lines = [
        f"# Fire drill: {verdict}",
        "",
        f"{document['batches_run']} batches of {document['batch_rows']} rows from "
        f"`{document['stream']}` ({'quick' if document['quick'] else 'full'} drill, "
        f"{document['seconds']:.0f} s). False alarms: {totals['false_alarms']} of "
        f"{totals['clean_batches']} clean batches; detected: {totals['detected']} of "
        f"{totals['scenarios']} scenarios.",
        "",
        "| Scenario | Injected | Expected | Actions | Detected | Delay (batches) | OK |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in document["scenarios"]:
        detected = "-" if s["expected"] == NONE else ("yes" if s["detected"] else "**no**")
        lines.append(
            f"| {s['scenario']} | {s['change']} | {s['expected']} | {', '.join(s['actions'])} "
            f"| {detected} | {_value(s.get('delay'))} | {'yes' if s['ok'] else '**no**'} |"
        )
    lines += [
        "",
        f"| Batch | Scenario | Model | Drift share | Estimated {metric} | Realised {metric} "
        "| Decision | Expected | OK |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in document["batches"]:
        lines.append(
            f"| {b['batch']} | {b['scenario']} | {b['model']} | {_value(b['drift_share'], 2)} "
            f"| {_value(b['estimated'])} | {_value(b['realised'])} | {b['action']} "
            f"| {b['expected']} | {'yes' if b['ok'] else '**no**'} |"
        )
    lines += ["", "Why each decision:", ""]
    for b in document["batches"]:
        flipped = f" ({b['flipped_labels']} labels flipped)" if b.get("flipped_labels") else ""
        lines.append(f"- batch {b['batch']}{flipped}: {'; '.join(b['reasons']) or b['action']}")
    if chart:
        lines += ["", f"![timeline]({chart})"]
    return "\n".join(lines) + "\n"


def chart(document: Mapping[str, Any], path: Path) -> None:
    """Per batch: drift share, estimated and realised metric, and the decision against
    the expected one; the scenarios as shaded spans."""
    import matplotlib  # noqa: PLC0415 (only the chart needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    batches = document["batches"]
    x = [b["batch"] for b in batches]
    figure, (drift, metric, decision) = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    drift.plot(x, [b["drift_share"] for b in batches], "o-", color="tab:blue")
    drift.axhline(document["drift_share_limit"], color="grey", linestyle="--", linewidth=1)
    drift.set_ylabel("drifted share")
    drift.set_ylim(-0.05, 1.05)
    name = document.get("metric", "metric")
    for key, style in (("estimated", "s--"), ("realised", "o-")):
        metric.plot(x, [_nan(b[key]) for b in batches], style, label=f"{key} {name}")
    for label, value in document.get("metric_limits", {}).items():
        metric.axhline(value, color="grey", linestyle=":", linewidth=1)
        metric.annotate(label, (x[0], value), fontsize=7, va="bottom")
    metric.set_ylabel(name)
    metric.legend(loc="lower left", fontsize=8)
    actions = ["none", "alert", "retrain", "rollback", "error"]
    level = {a: i for i, a in enumerate(actions)}
    decision.scatter(
        x,
        [level.get(b["expected"], 4) for b in batches],
        s=160,
        facecolors="none",
        edgecolors="grey",
        label="expected",
    )
    decision.scatter(
        x,
        [level.get(b["action"], 4) for b in batches],
        s=50,
        c=["tab:green" if b["ok"] else "tab:red" for b in batches],
        label="decision",
    )
    decision.set_yticks(range(len(actions)), actions)
    decision.set_xlabel("batch")
    decision.legend(loc="upper left", fontsize=8)
    start = 0
    for s in document["scenarios"]:
        first, last = start + 1, start + int(s["batches"])
        for axis in (drift, metric, decision):
            axis.axvspan(
                first - 0.5,
                last + 0.5,
                alpha=0.08 if len(axis.patches) % 2 else 0.16,
                color="tab:orange" if s["expected"] != NONE else "tab:green",
            )
        drift.annotate(s["scenario"], ((first + last) / 2, 1.0), ha="center", fontsize=7)
        start = last
    figure.suptitle(f"Fire drill: {'passed' if document['rates']['ok'] else 'FAILED'}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
