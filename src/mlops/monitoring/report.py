"""The monitoring report for people: Markdown and a self-contained HTML page with plots.

``reports/monitoring/monitoring.json`` is the machines' copy (the stage writes the
document as it is); this module renders the same document as ``monitoring.md``
(the verdict, what breached, then a table per check) and ``monitoring.html`` (the
same, plus plots as inline PNG: drift per feature, the score or value distribution
of the reference against the window, and metrics over the windows monitored so far,
read from the small history file each run appends one line to). Pure: the stage
writes the bytes, atomically.

Plots are drawn as ``mlops.evaluation.charts`` draws them: matplotlib's object API
and the Agg renderer, no pyplot, so nothing global is touched.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mlops.evaluation.charts import png
from mlops.monitoring.reference import category_keys

_SIZE = (6.0, 3.6)
_DPI = 100
_TOP_FEATURES = 20
_SCORE_CAP = 10.0  # a drift score this many times past its threshold is drawn at the cap


def markdown(document: Mapping[str, Any]) -> str:
    """The verdict, the breached checks first, then one table per check."""
    lines = [
        "# Production monitoring",
        "",
        *_head(document),
        "",
        "| check | breach | summary |",
        "|---|---|---|",
        *(
            f"| {f['check']} | {'**yes**' if f['breach'] else 'no'} | {_cell(f['summary'])} |"
            for f in _ordered(document["findings"])
        ),
    ]
    for finding in document["findings"]:
        rows = _evidence_rows(finding["evidence"])
        lines += ["", f"## {finding['check']}", "", finding["summary"], ""]
        if rows:
            lines += ["| evidence | value |", "|---|---|"]
            lines += [f"| {key} | {_cell(value)} |" for key, value in rows]
    return "\n".join(lines) + "\n"


def _head(document: Mapping[str, Any]) -> list[str]:
    window = document["window"]
    breached = [f["check"] for f in document["findings"] if f["breach"]]
    verdict = f"**BREACH**: {', '.join(breached)}" if breached else "no breach"
    counts = document["counts"]
    return [
        f"Model {document['model_version']}, {document['rows']} rows logged "
        f"{window.get('first_logged')} .. {window.get('last_logged')} ({window['describe']}); "
        f"{counts['corrupt']} corrupt lines skipped, {counts['refused']} refused.",
        "",
        f"Verdict: {verdict}.",
    ]


def _ordered(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The breached checks first, each group in the checks' own order."""
    return [f for f in findings if f["breach"]] + [f for f in findings if not f["breach"]]


def _evidence_rows(evidence: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The evidence's scalar and short values; per-feature detail stays in the JSON."""
    rows = []
    for key, value in evidence.items():
        if isinstance(value, dict) and key in ("features", "columns", "metrics"):
            rows += [(f"{key}.{name}", _brief(v)) for name, v in value.items()]
        else:
            rows.append((key, value))
    return rows


_BRIEF = (
    *("test", "score", "threshold", "drifted", "psi", "null_rate", "value", "reference"),
    *("tolerance", "breach", "realised", "low", "high", "nan", "infinite", "out_of_range"),
)


def _brief(value: Any) -> Any:
    """A per-feature or per-metric record cut to the fields a reader compares."""
    if not isinstance(value, dict):
        return value
    return {k: value[k] for k in _BRIEF if k in value} or value


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(_rounded(value), default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _rounded(value: Any) -> Any:
    """Numbers to 4 significant digits, for reading (the JSON keeps them whole)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# --- HTML and plots ---------------------------------------------------------------------


def page(document: Mapping[str, Any], charts: Mapping[str, bytes]) -> str:
    """A self-contained HTML page: the Markdown report's content and the charts inline."""
    findings = document["findings"]
    rows = "".join(
        f"<tr class={'breach' if f['breach'] else 'ok'}><td>{html.escape(f['check'])}</td>"
        f"<td>{'yes' if f['breach'] else 'no'}</td><td>{html.escape(f['summary'])}</td></tr>"
        for f in _ordered(findings)
    )
    images = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
        f"src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
        for title, data in charts.items()
    )
    details = "".join(
        f"<h2>{html.escape(f['check'])}</h2><p>{html.escape(f['summary'])}</p>"
        f"<table>{_evidence_html(f['evidence'])}</table>"
        for f in findings
    )
    head = "".join(f"<p>{html.escape(line)}</p>" for line in _head(document) if line)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Production monitoring</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}"
        "table{border-collapse:collapse}tr.breach{background:#fdd}</style></head><body>"
        f"<h1>Production monitoring</h1>{head}"
        f"<table><tr><th>check</th><th>breach</th><th>summary</th></tr>{rows}</table>"
        f"{images}{details}</body></html>\n"
    )


def _evidence_html(evidence: Mapping[str, Any]) -> str:
    return "".join(
        f"<tr><td>{html.escape(key)}</td><td>{html.escape(_cell(value))}</td></tr>"
        for key, value in _evidence_rows(evidence)
    )


def charts(
    document: Mapping[str, Any],
    reference: Mapping[str, Any],
    outputs: pd.DataFrame,
    history: Sequence[Mapping[str, Any]],
) -> dict[str, bytes]:
    """Title -> PNG: drift per feature, the answers' distribution against the
    reference's held-out answers, and (from two monitored windows on) metrics over them."""
    found = {f["check"]: f["evidence"] for f in document["findings"]}
    drawn = {}
    if len(outputs):  # else every request was refused: nothing answered to draw
        drawn["Drift per feature"] = _draw(_drift_plot(found["drift"]["features"]))
        column = str(reference["prediction"]["drift_column"])
        profile = reference["prediction"]["columns"][column]
        drawn[f"Answers: {column}, reference vs window"] = _draw(
            _distribution_plot(column, profile, outputs[column])
        )
    if len(history) >= 2:
        drawn["Over the monitored windows"] = _draw(_history_plot(history), (6.0, 4.5))
    return drawn


def _draw(plot: Callable[[Axes], None], size: tuple[float, float] = _SIZE) -> bytes:
    figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
    plot(figure.add_subplot())
    return png(figure)


def _severity(result: Mapping[str, Any]) -> float:
    """How far past its threshold a feature's drift score is: >= 1 means drifted, for
    p-values (threshold / p) and distances (distance / threshold) alike."""
    score, threshold = result.get("score"), result.get("threshold")
    if score is None or threshold is None or result.get("test") is None:
        return float("nan")
    p_valued = result["test"] in ("ks", "chi_squared")
    ratio = threshold / max(score, 1e-300) if p_valued else score / max(threshold, 1e-300)
    return float(min(ratio, _SCORE_CAP))


def _drift_plot(features: Mapping[str, Mapping[str, Any]]) -> Callable[[Axes], None]:
    severity = pd.Series({name: _severity(r) for name, r in features.items()}, dtype=float)
    shown = severity.fillna(0.0).sort_values().iloc[-_TOP_FEATURES:]

    def plot(axes: Axes) -> None:
        colours = ["tab:red" if v >= 1 else "tab:blue" for v in shown]
        axes.barh([str(n) for n in shown.index], shown.to_numpy(), color=colours)
        axes.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        axes.set(
            xlabel=f"drift score / threshold (>= 1: drifted; capped at {_SCORE_CAP:g})",
            title="Drift per feature",
        )

    return plot


def _distribution_plot(
    column: str, profile: Mapping[str, Any], values: pd.Series
) -> Callable[[Axes], None]:
    if profile.get("sample"):
        sample = np.asarray(profile["sample"], dtype=float)
        window = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        window = window[np.isfinite(window)]

        def numeric(axes: Axes) -> None:
            both = np.concatenate([sample, window])
            edges = np.histogram_bin_edges(both, bins=30).tolist()
            axes.hist(sample, bins=edges, density=True, alpha=0.5, label="reference (held out)")
            axes.hist(window, bins=edges, density=True, alpha=0.5, label="window")
            axes.set(xlabel=column, ylabel="density", title=f"{column}: distribution")
            axes.legend()

        return numeric
    before = pd.Series(profile.get("frequencies", {}), dtype=float)
    now = category_keys(values).value_counts(normalize=True)
    shares = pd.DataFrame({"reference": before, "window": now}).fillna(0.0)

    def categorical(axes: Axes) -> None:
        positions = np.arange(len(shares))
        axes.bar(positions - 0.2, shares["reference"], width=0.4, label="reference (held out)")
        axes.bar(positions + 0.2, shares["window"], width=0.4, label="window")
        axes.set_xticks(positions, [str(i) for i in shares.index], rotation=45, ha="right")
        axes.set(ylabel="share", title=f"{column}: class rates")
        axes.legend()

    return categorical


def history_row(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the "over the windows" plot needs of one run: when, the drift share, the
    refused rate, and the target metric estimated and realised (None: not measured)."""
    found = {f["check"]: f["evidence"] for f in document["findings"]}
    performance = found["performance"]
    metric = performance["metric"]
    estimated = found["estimated_performance"].get("metrics", {}).get(metric, {})
    return {
        "monitored_at": document["monitored_at"],
        "last_logged": document["window"].get("last_logged"),
        "model_version": document["model_version"],
        "rows": document["rows"],
        "breach": document["breach"],
        "drift_share": found["drift"]["share"],
        "refused_rate": found["input_quality"]["refused_rate"],
        "metric": metric,
        "estimated": estimated.get("value"),
        "realised": performance.get("value"),
    }


def _history_plot(history: Sequence[Mapping[str, Any]]) -> Callable[[Axes], None]:
    frame = pd.DataFrame(list(history))
    x = np.arange(len(frame))
    metric = str(frame["metric"].iloc[-1])

    def plot(axes: Axes) -> None:
        axes.plot(x, frame["drift_share"], marker="o", label="share of features drifted")
        axes.plot(x, frame["refused_rate"], marker="o", label="refused rate")
        for key in ("estimated", "realised"):
            values = pd.to_numeric(frame[key], errors="coerce")
            if values.notna().any():
                axes.plot(x, values, marker="s", label=f"{metric} {key}")
        axes.set_xticks(x, [str(v)[:16] for v in frame["last_logged"]], rotation=45, ha="right")
        axes.set(xlabel="window (newest row)", title="Over the monitored windows")
        axes.legend(fontsize="small")

    return plot


def parse_history(text: str) -> list[dict[str, Any]]:
    """The history file's records; a line that is not one (cut by a full disk) is skipped."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and {"drift_share", "last_logged", "metric"} <= set(record):
            records.append(record)
    return records
