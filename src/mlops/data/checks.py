"""The data tests composed: contract, quality, privacy, lawful use, row identifiers
and feature value, into reports/validation.json, its readable twin reports/validation.md,
and the one line a failed validation ends with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import pandera.pandas as pa

from mlops.config import PATHS, ValidateConfig
from mlops.data import privacy, quality
from mlops.data.contract import ContractResult, check_contract, resolve_columns, select_features
from mlops.data.identifiers import identify
from mlops.data.privacy import Finding
from mlops.data.quality import DUPLICATES_ADVICE, FeatureQuality, percent
from mlops.errors import CheckFailed, UsageError

if TYPE_CHECKING:  # these pull in scikit-learn and scipy: only the pipeline needs them
    from mlops.data.cost import Cost, Footprint
    from mlops.data.importance import Importance
    from mlops.data.leakage import Leakage
    from mlops.data.redundancy import Pair


@dataclass(frozen=True)
class Measured:
    """Feature value and cost, measured on the training split (the pipeline run only)."""

    importances: Mapping[str, Importance]
    method: Mapping[str, Any]  # how importance was measured (scoring, rows)
    pairs: Sequence[Pair]  # every pair's association, strongest first
    footprint: Footprint | None  # the probe with every feature; None: cost not measured
    costs: Mapping[str, Cost]
    cost_method: Mapping[str, Any]


@dataclass(frozen=True)
class Verdict:
    """The features that add nothing, and what validate.importance.policy does to them."""

    zero: tuple[str, ...]
    redundant: Mapping[str, Pair]  # the feature left out -> the pair that made it redundant
    policy: str

    @property
    def names(self) -> list[str]:
        return [*self.zero, *self.redundant]

    @property
    def failed(self) -> bool:
        return self.policy == "fail" and bool(self.names)

    def dropped(self) -> dict[str, list[str]]:
        drop = self.policy == "drop"
        return {"importance": list(self.zero) if drop else [],
                "redundancy": list(self.redundant) if drop else []}  # fmt: skip


@dataclass(frozen=True)
class Checked:
    """Everything the data tests found in one table, before feature value is measured."""

    source: str
    contract_path: str
    rows: int
    columns: int
    target: str
    extra_found: tuple[str, ...]
    contract: ContractResult
    findings: tuple[Finding, ...]
    qualities: Mapping[str, FeatureQuality]
    protected: tuple[str, ...]
    ids: Mapping[str, str]  # column -> why it identifies rows
    privacy_dropped: tuple[str, ...]
    candidates: tuple[str, ...]  # the features, before the feature-value policy
    groups: str | None = None  # split.groups: rows that belong together, never a feature
    time: str | None = None  # split.time: the order of the rows, never a feature
    # Rows repeating an earlier one (features and target), and rows whose features a
    # row of another target shares (quality.duplicate_rows).
    duplicates: Mapping[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.contract.passed and not privacy.failed(list(self.findings))


def check(
    frame: pd.DataFrame,
    contract: pa.DataFrameSchema,
    config: ValidateConfig,
    *,
    target: str,
    seed: int,
    source: str,
    contract_path: str,
    require_target: bool,
    groups: str | None = None,
    time: str | None = None,
) -> Checked:
    """Run every data test on ``frame`` (default RangeIndex); a policy error in params
    raises UsageError, data problems end up in the result. ``groups`` (split.groups)
    and ``time`` (split.time), checked against the data, are never features."""
    policy = resolve_policy(config, contract, list(frame.columns), target)
    ids = identify(frame[[c for c in frame.columns if c in contract.columns]], target, policy.ids)
    splitting = {c for c in (groups, time) if c is not None}
    ids = {name: why for name, why in ids.items() if name not in splitting}
    excluded = {*policy.protected, *ids, *policy.privacy.drop, *splitting}
    if not select_features(contract.columns, target, excluded):
        raise UsageError(
            "params.yaml validate: no feature left once the target, the protected attributes, "
            f"the row identifiers ({', '.join(ids) or 'none'}; validate.ids) and the privacy "
            "drops are excluded"
        )
    result = check_contract(
        frame,
        contract,
        target if require_target else None,
        policy.extra_columns,
        policy.max_value_skew,
    )
    columns = [c for c in contract.columns if c in frame.columns and c != target]
    dropped = tuple(c for c in policy.privacy.drop if c in frame.columns)
    candidates = select_features(columns, target, excluded)
    # An id's (or a group's, or a time's) cardinality explodes by design.
    scored = [c for c in columns if c not in ids and c not in splitting]
    return Checked(
        source=source,
        contract_path=contract_path,
        rows=len(frame),
        columns=len(frame.columns),
        target=target,
        extra_found=tuple(c for c in frame.columns if c not in contract.columns),
        contract=result,
        findings=tuple(privacy.scan(frame, policy.privacy, seed)),
        qualities=quality.assess(
            frame, scored, out_of_contract=result.out_of_contract, unseen=result.unseen,
            config=policy.quality, threshold=policy.qa_threshold,
        ),
        protected=policy.protected,
        ids=ids,
        privacy_dropped=dropped,
        candidates=tuple(candidates),
        groups=groups,
        time=time,
        duplicates=quality.duplicate_rows(frame, candidates, target),
    )  # fmt: skip


def resolve_policy(
    config: ValidateConfig, contract: pa.DataFrameSchema, columns: Sequence[str], target: str
) -> ValidateConfig:
    """``config`` with every column name it holds normalised and checked against the
    contract (or, for the privacy lists, the data too)."""
    known = set(contract.columns)
    protected = resolve_columns(config.protected, known - {target}, "validate.protected")
    ids = (
        None
        if config.ids is None
        else resolve_columns(config.ids, known - {target}, "validate.ids")
    )
    lists = {
        key: tuple(resolve_columns(getattr(config.privacy, key), known | set(columns), where))
        for key, where in (("drop", "validate.privacy.drop"), ("allow", "validate.privacy.allow"))
    }
    sentinels = dict(
        zip(
            resolve_columns(config.quality.sentinels, known, "validate.quality.sentinels"),
            config.quality.sentinels.values(),
            strict=True,
        )
    )
    _check_sentinels(sentinels, contract)
    return config.model_copy(
        update={
            "protected": tuple(protected),
            "ids": None if ids is None else tuple(ids),
            "privacy": config.privacy.model_copy(update=lists),
            "quality": config.quality.model_copy(update={"sentinels": sentinels}),
        }
    )


def _check_sentinels(
    sentinels: Mapping[str, Sequence[float | str]], contract: pa.DataFrameSchema
) -> None:
    for name, values in sentinels.items():
        numeric = pd.api.types.is_numeric_dtype(contract.columns[name].dtype.type)
        for value in values:
            if isinstance(value, float) != numeric:
                kind = "numeric" if numeric else "text"
                raise UsageError(
                    f"params.yaml validate.quality.sentinels.{name}: {value!r} does not fit a "
                    f"{kind} column"
                )


def build(
    checked: Checked,
    config: ValidateConfig,
    measured: Measured | None,
    leakage: Leakage | None = None,
) -> dict[str, Any]:
    """reports/validation.json. Other stages read ``passed``, ``features``, ``quality``,
    ``protected`` and ``ids``."""
    verdict = judge(checked, config, measured)
    dropped = verdict.dropped()
    leaks = leakage.dropped if leakage is not None else []
    left_out = {*dropped["importance"], *dropped["redundancy"], *leaks}
    failures = checked.contract.failures
    skews = [f.skew for f in failures]
    leaked = leakage is not None and leakage.failed
    return {
        "passed": checked.passed and not verdict.failed and not leaked,
        "source": checked.source,
        "contract": checked.contract_path,
        "rows": checked.rows,
        "columns": checked.columns,
        "target": checked.target,
        "extra_columns": {"policy": config.extra_columns, "found": list(checked.extra_found)},
        "failures": [f.to_dict() for f in failures],
        "skew": {
            "max_value_skew": config.max_value_skew,
            "schema": skews.count("schema"),
            "value": skews.count("value"),
            "fatal": sum(f.fatal for f in failures),
        },
        "features": [c for c in checked.candidates if c not in left_out],
        "protected": list(checked.protected),
        "ids": dict(checked.ids),
        "groups": checked.groups,
        "time": checked.time,
        "duplicates": dict(checked.duplicates),
        "dropped": {"privacy": list(checked.privacy_dropped), "leakage": leaks, **dropped},
        "quality": {
            "threshold": config.qa_threshold,
            "features": {name: q.to_dict() for name, q in checked.qualities.items()},
            "failing": quality.failing(checked.qualities),
        },
        "privacy": {
            "passed": not privacy.failed(list(checked.findings)),
            "findings": [f.to_dict() for f in checked.findings],
        },
        "leakage": leakage.to_dict() if leakage is not None else None,
        "importance": _importance(measured, config, verdict),
        "cost": _cost(measured, verdict),
    }


def judge(checked: Checked, config: ValidateConfig, measured: Measured | None) -> Verdict:
    """The less important of each pair associated above validate.importance.redundancy,
    then, among the rest, features indistinguishable from zero.

    Redundancy comes first because twins share their importance: shuffling one costs
    little while the other stands in, so both can look worthless. The twin that stays
    is not judged by that shared importance.
    """
    policy = config.importance.policy
    if measured is None:
        return Verdict((), {}, policy)
    from mlops.data.redundancy import redundant  # noqa: PLC0415 (scipy: the pipeline run only)

    values = measured.importances
    if policy == "drop" and all(value.zero for value in values.values()):
        raise CheckFailed(
            "every feature's permutation importance is indistinguishable from zero: the data "
            "carries no signal about the target (params.yaml validate.importance.policy: drop)"
        )
    means = {name: value.mean for name, value in values.items()}
    twins = redundant(measured.pairs, config.importance.redundancy, means, list(checked.candidates))
    stays = {name for pair in twins.values() for name in (pair.first, pair.second)}
    zero = tuple(name for name, value in values.items() if value.zero and name not in stays)
    return Verdict(zero, twins, policy)


def _importance(
    measured: Measured | None, config: ValidateConfig, verdict: Verdict
) -> dict[str, Any] | None:
    if measured is None:
        return None
    values = measured.importances
    return dict(measured.method) | {
        "z": config.importance.z,
        "policy": verdict.policy,
        "features": {name: value.to_dict() for name, value in values.items()},
        "indistinguishable_from_zero": list(verdict.zero),
        "redundancy": {
            "threshold": config.importance.redundancy,
            "redundant": {name: pair.to_dict() for name, pair in verdict.redundant.items()},
            "pairs_measured": len(measured.pairs),
            "pairs": [pair.to_dict() for pair in _listed(measured.pairs, config)],
        },
    }


# Pairs listed in validation.json: the strongest, and every one above the threshold.
# 1,000 features make 499,500 pairs, which took validation.json (kept in git) to 68 MB.
_LISTED_PAIRS = 100


def _listed(pairs: Sequence[Pair], config: ValidateConfig) -> Sequence[Pair]:
    """The strongest of ``pairs`` (sorted strongest first): _LISTED_PAIRS, or every pair
    above validate.importance.redundancy when more are."""
    above = sum(pair.value > config.importance.redundancy for pair in pairs)
    return pairs[: max(_LISTED_PAIRS, above)]


def _cost(measured: Measured | None, verdict: Verdict) -> dict[str, Any] | None:
    """Each feature's cost beside its value. A feature whose value is indistinguishable
    from zero, or duplicated by another's, costs more than it is worth whatever it costs:
    validate.importance.policy is what acts on it."""
    if measured is None or measured.footprint is None:
        return None
    values = measured.importances
    report = dict(measured.cost_method) | {
        "policy": verdict.policy,
        "acts_on": "features adding nothing: indistinguishable from zero or redundant",
        "latencies": f"{PATHS.runs_dir / 'validate.json'} (measured: they vary from run to run)",
        "with_every_feature": measured.footprint.to_dict(),
        "features": {
            name: cost.to_dict() | {"importance": values[name].mean if name in values else None}
            for name, cost in measured.costs.items()
        },
        "adding_nothing": verdict.names,
    }
    return report | _partly(len(measured.costs), len(values))


def _partly(measured: int, total: int) -> dict[str, str]:
    """Which features' cost was measured, when not every one's."""
    if measured >= total:
        return {}
    return {
        "measured": f"the {measured} least valuable of {total} features "
        "(validate.cost.max_features: one refit each)"
    }


def cost_latencies(measured: Measured | None) -> dict[str, Any] | None:
    """The measured latencies of the cost section: CPU time differs on every run, so they
    go to the run record (reports/runs/validate.json), not into validation.json, whose
    bytes feed impute and must not change when nothing else did."""
    if measured is None or measured.footprint is None:
        return None
    return {
        "unit": "us of one thread's CPU time per single-row prediction",
        "with_every_feature": measured.footprint.latency_us,
        "saved_without": {name: cost.latency_us for name, cost in measured.costs.items()},
    }


# --- the one line --------------------------------------------------------------


def error_line(report: Mapping[str, Any]) -> str:
    """Why validation failed, in one line: the first problem, and how many more."""
    problems = [
        _describe_finding(f) for f in report["privacy"]["findings"] if f["decision"] == "fail"
    ]
    problems += [
        describe(f, report["rows"], report["skew"]["max_value_skew"])
        for f in report["failures"]
        if f["fatal"]
    ]
    leakage = report.get("leakage")
    if not problems and leakage is not None and leakage["policy"] == "fail":
        problems = [_describe_leak(leakage, name) for name in leakage["suspected"]]
    if not problems:  # the contract, privacy and leakage passed: feature value failed it
        problems = [_describe_value(report["importance"])]
    more = len(problems) - 1
    suffix = f"; {more} more (all: mlops validate --report FILE)" if more else ""
    return f"{report['source']}: validation failed: {problems[0]}{suffix}"


def _describe_value(importance: Mapping[str, Any]) -> str:
    zero = [f"{name} (importance indistinguishable from zero)"
            for name in importance["indistinguishable_from_zero"]]  # fmt: skip
    redundant = [
        f"{name} (redundant with {_partner(name, pair)}: {pair['measure']} "
        f"{pair['value']:.2f} > {importance['redundancy']['threshold']})"
        for name, pair in importance["redundancy"]["redundant"].items()
    ]
    return (
        f"feature(s) adding nothing: {', '.join(zero + redundant)} (params.yaml "
        "validate.importance.policy: fail; drop leaves them out of the model)"
    )


def _describe_leak(leakage: Mapping[str, Any], name: str) -> str:
    return (
        f"feature {name!r} alone forecasts the target with skill {leakage['skills'][name]:.3f} "
        f">= validate.leakage.max_skill {leakage['max_skill']:g} on held-out rows, a suspected "
        "target leak: list it in params.yaml data.drop if it is recorded after the outcome, "
        "or in validate.leakage.allow if it is known when a prediction is made"
    )


def _partner(name: str, pair: Mapping[str, Any]) -> str:
    return str(pair["second"] if pair["first"] == name else pair["first"])


def _describe_finding(finding: Mapping[str, Any]) -> str:
    where = (
        "name and values"
        if finding["in_name"] and finding["matches"]
        else ("name" if finding["in_name"] else "values")
    )
    seen = (
        f"{finding['matches']} of {finding['scanned']} distinct values"
        if finding["matches"]
        else ""
    )
    examples = f", e.g. {', '.join(finding['examples'])}" if finding["examples"] else ""
    return (
        f"column {finding['column']!r} holds personal data ({'/'.join(finding['kinds'])} "
        f"in its {where}{': ' + seen if seen else ''}{examples}); drop or allow it in "
        "params.yaml validate.privacy"
    )


def describe(failure: Mapping[str, Any], rows: int, max_value_skew: float) -> str:
    """One failure for a person: the column, the check, how much, what it looked like."""
    column, check = repr(failure["column"]), failure["check"]
    examples = failure["examples"]
    if check == "column_in_dataframe":
        return f"column {column} is in the contract but not in the data (column_in_dataframe)"
    if check == "column_in_schema":
        return (
            f"column {column} is not in the contract (column_in_schema; "
            "params.yaml validate.extra_columns: fail)"
        )
    if check == "dtype":
        return f"column {column} failed {failure['detail']}: got {examples[0]}"
    if check == "all_null":
        return f"column {column} failed all_null: every one of {rows} values is missing"
    limit = f" > max_value_skew {percent(max_value_skew)}" if failure["skew"] == "value" else ""
    return (
        f"column {column} failed {failure['detail']} in {failure['failing_rows']} of {rows} rows "
        f"({percent(failure['rate'])}{limit}; {failure['skew']} skew), e.g. {examples}"
    )


# --- markdown ------------------------------------------------------------------


def cost_markdown(report: Mapping[str, Any], latencies: Mapping[str, Any]) -> str:
    """The cost table with this run's latencies (reports/runs/validate.md, which the
    pull-request report shows): value, latency, bytes and acquisition side by side."""
    return "\n".join(_cost_section(report["cost"], latencies)) + "\n"


def markdown(report: Mapping[str, Any]) -> str:
    """reports/validation.md: what a reviewer reads in a pull request."""
    verdict = "passed" if report["passed"] else "FAILED"
    lines = [
        f"# Data validation: {verdict}",
        "",
        f"`{report['source']}`: {report['rows']:,} rows x {report['columns']} columns, "
        f"checked against `{report['contract']}`. Schema skew stops the pipeline; value skew "
        f"is reported, and stops it above {percent(report['skew']['max_value_skew'])} of a "
        "column's rows.",
        "",
        *_contract_section(report),
        *_duplicates_section(report),
        *_quality_section(report["quality"]),
        *_privacy_section(report["privacy"]),
        *_leakage_section(report.get("leakage")),
        *_importance_section(report["importance"]),
        *_cost_section(report["cost"]),
        "## Features and lawful use",
        "",
        f"- Features the model may read ({len(report['features'])}): {_names(report['features'])}",
        f"- Protected attributes (kept for slice metrics, never features): "
        f"{_names(report['protected'])}",
        f"- Row identifiers (kept in the data, never features; params.yaml validate.ids): "
        f"{_ids(report['ids'])}",
        *(
            [
                f"- Groups of rows (each kept whole in splits and folds, never a feature; "
                f"params.yaml split.groups): {report['groups']}"
            ]
            if report.get("groups")
            else []
        ),
        *(
            [
                f"- Time order (the latest rows are the test split, never a feature; "
                f"params.yaml split.time): {report['time']}"
            ]
            if report.get("time")
            else []
        ),
        *(f"- Dropped ({reason}): {_names(names)}" for reason, names in report["dropped"].items()),
    ]
    return "\n".join(lines) + "\n"


def _ids(ids: Mapping[str, str]) -> str:
    return "; ".join(f"`{name}` ({why})" for name, why in ids.items()) if ids else "none"


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) if names else "none"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows),
        "",
    ]


def _contract_section(report: Mapping[str, Any]) -> list[str]:
    failures: list[Mapping[str, Any]] = report["failures"]
    head = ["## Contract", ""]
    if not failures:
        return [*head, "Every column meets the contract.", ""]
    rows = [
        [
            f"`{f['column']}`",
            f["detail"],
            f["skew"],
            f"{f['failing_rows']:,}",
            percent(f["rate"]),
            "**stop**" if f["fatal"] else "report",
            ", ".join(map(str, f["examples"])),
        ]
        for f in failures
    ]
    header = ["Column", "Check", "Skew", "Failing rows", "Rate", "Verdict", "Examples"]
    return [*head, *_table(header, rows)]


def _duplicates_section(report: Mapping[str, Any]) -> list[str]:
    found = report.get("duplicates") or {}
    repeated, conflicting = found.get("repeated", 0), found.get("conflicting", 0)
    if not repeated and not conflicting:
        return []
    rows = report["rows"]
    return [
        "## Duplicate rows",
        "",
        f"{repeated:,} rows ({percent(repeated / rows)}) repeat an earlier row in the features "
        f"and the target; {conflicting:,} ({percent(conflicting / rows)}) share their features "
        f"with a row of another target. {DUPLICATES_ADVICE[0].upper()}{DUPLICATES_ADVICE[1:]}.",
        "",
    ]


def _quality_section(quality: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            f"`{name}`",
            f"{q['score']:.3f}",
            "pass" if q["passed"] else "**failing**",
            percent(q["missing_rate"]),
            percent(q["invalid_rate"]),
            percent(q["sentinel_rate"]),
            q["distinct"],
            "; ".join(q["reasons"]) or "-",
        ]
        for name, q in quality["features"].items()
    ]
    header = ["Feature", "Score", "Verdict", "Missing", "Out of contract", "Sentinel"]
    return [
        f"## Feature quality (QA threshold {quality['threshold']})",
        "",
        *_table([*header, "Distinct", "Reasons"], rows),
    ]


def _privacy_section(privacy: Mapping[str, Any]) -> list[str]:
    head = ["## Personal data", ""]
    if not privacy["findings"]:
        return [*head, "No column name or value looks like personal data.", ""]
    rows = [
        [
            f"`{f['column']}`",
            ", ".join(f["kinds"]),
            "yes" if f["in_name"] else "no",
            f"{f['matches']} of {f['scanned']}",
            ", ".join(f["examples"]) or "-",
            f["decision"],
        ]
        for f in privacy["findings"]
    ]
    header = ["Column", "Looks like", "In name", "Distinct values matching", "Examples (masked)"]
    return [*head, *_table([*header, "Decision"], rows)]


def _leakage_section(leakage: Mapping[str, Any] | None) -> list[str]:
    if leakage is None:
        return []
    suspected = leakage["suspected"]
    acts = {"report": "reported only", "drop": "left out of the model",
            "fail": "validation fails"}[leakage["policy"]]  # fmt: skip
    shown = max(5, len(suspected) + len(leakage["allow"]))
    top = sorted(leakage["skills"].items(), key=lambda item: (-item[1], item[0]))[:shown]
    lines = [
        "## Target leakage",
        "",
        f"Each feature alone, out of fold over {leakage['rows']:,} training rows in "
        f"{leakage['folds']} folds (each row forecast by a fit on the others): its skill (1 - "
        "squared error / the prior's; 1 perfect, 0 no better than always forecasting "
        f"{leakage['prior']} in the fitted rows). "
        "A feature at or above "
        f"{leakage['max_skill']:g} all but gives the target away: usually it is recorded after "
        f"the outcome, and will not be known when a prediction is made ({acts}; params.yaml "
        "validate.leakage).",
        "",
        *_table(
            ["feature", "skill alone", "verdict"],
            [[f"`{name}`", f"{value:.3f}", _leak_verdict(leakage, name)] for name, value in top],
        ),
    ]
    if suspected:
        lines += [
            f"Suspected: {_names(suspected)}. If it is recorded after the outcome, list it in "
            "data.drop; if it is truly known when predicting, in validate.leakage.allow.",
            "",
        ]
    return lines


def _leak_verdict(leakage: Mapping[str, Any], name: str) -> str:
    if leakage["skills"][name] < leakage["max_skill"]:
        return ""
    return "suspected leak" if name in leakage["suspected"] else "allowed (validate.leakage.allow)"


def _importance_section(importance: Mapping[str, Any] | None) -> list[str]:
    if importance is None:
        return []
    rows = [
        [
            f"`{name}`",
            f"{v['mean']:.4f}",
            f"{v['std']:.4f}",
            _verdict(name, importance),
        ]
        for name, v in sorted(importance["features"].items(), key=lambda kv: -kv[1]["mean"])
    ]
    redundancy = importance["redundancy"]
    strongest = [
        [f"`{p['first']}`", f"`{p['second']}`", p["measure"], f"{p['value']:.3f}"]
        for p in redundancy["pairs"][:_STRONGEST_PAIRS]
    ]
    action = {"report": "reported only", "drop": "left out of the model", "fail": "fail validation"}
    return [
        f"## Feature value (permutation importance, {importance['scoring']})",
        "",
        f"A probe model fitted on {importance['fit_rows']:,} rows of the training split, "
        f"each feature shuffled on {importance['held_out_rows']:,} held-out rows; the score "
        f"drop is how much worse {importance['scoring']} gets. Indistinguishable from zero: "
        f"mean - {importance['z']} x std <= 0. Redundant: the less important of a pair "
        f"associated above {redundancy['threshold']}. Features adding nothing are "
        f"{action[importance['policy']]} (validate.importance.policy: {importance['policy']}).",
        "",
        *_table(["Feature", "Score drop", "Std", "Verdict"], rows),
        f"Strongest of the {redundancy['pairs_measured']:,} pairs' associations "
        "(|Spearman| for numbers, Cramér's V for categories, "
        "correlation ratio for a number with a category; both corrected for what many "
        "categories reach by chance):",
        "",
        *_table(["Feature", "Feature", "Measure", "Association"], strongest),
    ]


_STRONGEST_PAIRS = 5


def _verdict(name: str, importance: Mapping[str, Any]) -> str:
    if name in importance["indistinguishable_from_zero"]:
        return "**indistinguishable from zero**"
    pair = importance["redundancy"]["redundant"].get(name)
    if pair is not None:
        return f"**redundant** with `{_partner(name, pair)}` ({pair['value']:.2f})"
    return "informative"


def _cost_section(
    cost: Mapping[str, Any] | None, latencies: Mapping[str, Any] | None = None
) -> list[str]:
    """The cost table; with ``latencies`` (the run record's) a latency column too."""
    if cost is None:
        return []
    full = cost["with_every_feature"]
    saved = (latencies or {}).get("saved_without", {})

    def value(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    rows = [
        [
            f"`{name}`",
            value(c["importance"]),
            *([f"{saved[name]:+.1f}" if name in saved else "-"] if latencies else []),
            f"{c['bytes']:+,}",
            "-" if c["acquisition"] is None else f"{c['acquisition']:g}",
            "**adds nothing**" if name in cost["adding_nothing"] else "",
        ]
        for name, c in sorted(cost["features"].items(), key=lambda kv: -(kv[1]["importance"] or 0))
    ]
    latency = ["Latency (us)"] if latencies else []
    header = ["Feature", "Value (score drop)", *latency, "Model bytes", "Acquisition", ""]
    timed = (
        f"the fastest of {cost['timed_rows']} single-row predictions in CPU time of the one "
        f"thread serving them, {latencies['with_every_feature']:.1f} us with every feature"
        if latencies
        else f"latencies: {cost['latencies']}"
    )
    return [
        "## Feature cost against value",
        "",
        f"What each feature costs to keep: the probe model ({cost['fit_rows']:,} training rows, "
        f"{full['bytes']:,} bytes with every feature) minus the same model fitted without it "
        f"({timed}), and the acquisition cost data/schema.yaml declares (metadata.cost)"
        + (f"; measured for {cost['measured']}." if "measured" in cost else "."),
        "",
        *_table(header, rows),
    ]
