"""The rubric: the 28 tests of "The ML Test Score" (Breck et al. 2017), one check each.

The paper's scoring: half a point for a test done by hand with its result documented,
a full point for one automated and run repeatedly. Here a full point needs something
automated that FAILS when the property breaks (a pipeline stage or gate check that
stops the run, a test in the suite CI runs, a scheduled monitor that exits 1), run by
a workflow on every push, pull request or schedule; and, where the property is
measured, a current record that it ran. Each check is a pure function of the
``Evidence`` and cites what it found; a test it cannot see done but that a person
recorded in docs/reviews.yaml earns the half point (``score``).

A check is a ``ladder``: the requirements for the half point, then those for the
full point; the first one with no evidence is what the next half point needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlops.audit.evidence import (
    CODEOWNERS,
    DEPENDABOT,
    PLACEHOLDER_OWNER,
    RULESETS,
    Evidence,
    TestCase,
    cite,
)
from mlops.config import PATHS
from mlops.monitoring.findings import Check

Section = Literal["data", "model", "infrastructure", "monitoring"]
SECTIONS: dict[Section, str] = {
    "data": "Data",
    "model": "Model development",
    "infrastructure": "ML infrastructure",
    "monitoring": "Monitoring",
}
# Evidence found for one requirement, and what to do when there is none.
Need = tuple[Sequence[str], str]


@dataclass(frozen=True)
class Result:
    score: float
    evidence: tuple[str, ...]
    missing: str


CheckFunction = Callable[[Evidence], Result]


@dataclass(frozen=True)
class Test:
    id: str
    section: Section
    name: str
    check: CheckFunction


RUBRIC: list[Test] = []


def _test(section: Section, name: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check as the next test of ``section`` (the paper's order)."""

    def register(check: CheckFunction) -> CheckFunction:
        number = sum(t.section == section for t in RUBRIC) + 1
        RUBRIC.append(Test(f"{section}.{number}", section, name, check))
        return check

    return register


def ladder(half: Sequence[Need], full: Sequence[Need]) -> Result:
    found: list[str] = []
    for score, needs in ((0.0, half), (0.5, full)):
        for evidence, missing in needs:
            if not evidence:
                return Result(score, tuple(found), missing)
            found.extend(e for e in dict.fromkeys(evidence) if e not in found)
    return Result(1.0, tuple(found), "")


def score(test: Test, evidence: Evidence) -> Result:
    """The check's result; a test it found undone that a person recorded earns 0.5."""
    result = test.check(evidence)
    review = evidence.reviewed(test.id)
    if result.score == 0 and review is not None:
        return Result(0.5, (*result.evidence, review.cite()), result.missing)
    return result


# --- requirements the checks share ----------------------------------------------------


def _pipeline(ev: Evidence) -> Need:
    return ev.pipeline_runs(), "a workflow that runs `make repro` on every pull request"


def _stage(ev: Evidence, name: str, reads: str = "") -> Need:
    stage = ev.stages.get(name)
    deps = [str(d) for d in (stage or {}).get("deps", [])]
    ok = stage is not None and (not reads or reads in deps) and name in ev.locked
    what = f"dvc.yaml stage `{name}`" + (f" (reads {reads})" if reads else "")
    return ([f"{what}, recorded in dvc.lock"] if ok else []), f"{what}, run by `dvc repro`"


def _ci(ev: Evidence, tests: Sequence[TestCase], what: str) -> list[Need]:
    """Tests of ``what`` (run by hand: 0.5), and CI running them (1)."""
    run = [t for t in tests if not (t.slow and ev.ci_excludes_slow())]
    return [
        ([t.id for t in tests][:3], f"a test in tests/ that fails when {what}"),
        (cite([t.id for t in run]) and ev.test_runs(), "CI running those tests on every push"),
    ]


def _gate_enforced(ev: Evidence) -> Need:
    return (
        ev.runs(r"mlops gate --check"),
        "a workflow on push that runs `mlops gate --check` before promoting (cd.yml)",
    )


def _gate_checks(ev: Evidence, pattern: str) -> list[str]:
    gate = ev.report(PATHS.gate) or {}
    return [
        f"{PATHS.gate} checks[{c['name']}]: {c['verdict']}"
        for c in gate.get("checks", [])
        if re.search(pattern, str(c.get("name"))) and c.get("verdict") in ("pass", "fail")
    ]


def _finding(ev: Evidence, *checks: str) -> list[str]:
    """The current monitoring verdict's findings of ``checks``, and the responses to it."""
    report = ev.monitoring or {}
    found = [
        f"{ev.monitoring_source} findings[{f['check']}] on {report.get('model_version')} "
        f"at {report.get('monitored_at')}: {'breach' if f.get('breach') else 'ok'}"
        for f in report.get("findings", [])
        if isinstance(f, dict) and f.get("check") in checks
    ]
    if found and ev.decisions:
        last = ev.decisions[-1]
        found.append(
            f"monitoring/decisions.jsonl: {len(ev.decisions)} decisions, the last "
            f"{last.get('action')} at {last.get('decided_at')}"
        )
    return found


def _monitored(ev: Evidence, checks: tuple[Check, ...], alternative: Sequence[str] = ()) -> Result:
    """A monitoring test: the monitor's ``checks`` in a current verdict on the production
    model, and a schedule running the monitor. Either alone is half: a report run by hand,
    a schedule whose runs the audit cannot see, or ``alternative`` (what catches the
    breach elsewhere: at promotion, in tests)."""
    report = _finding(ev, *checks)
    scheduled = ev.scheduled(r"mlops monitor\b")
    names = " or ".join(f"`{c}`" for c in checks)
    why = ev.why_no_monitoring()
    return ladder(
        [([*report, *scheduled, *alternative], f"`mlops monitor` judging {names}{why}")],
        [
            (
                report,
                f"a current monitoring verdict on the production model with {names}{why}: "
                "the scheduled monitor's, which monitor.sh commits",
            ),
            (scheduled, "a scheduled workflow running `mlops monitor` (it exits 1 on a breach)"),
        ],
    )


def _validation(ev: Evidence) -> dict[str, Any]:
    return ev.report(PATHS.validation) or {}


def _evaluation(ev: Evidence) -> dict[str, Any]:
    return ev.report(PATHS.evaluation) or {}


# --- Data -----------------------------------------------------------------------------


@_test("data", "Feature expectations are captured in a schema")
def _schema(ev: Evidence) -> Result:
    validation = _validation(ev)
    return ladder(
        [
            (
                [f"{PATHS.schema} (the data contract)"] if ev.has(PATHS.schema) else [],
                f"a data contract, {PATHS.schema} (`mlops schema infer` drafts one)",
            )
        ],
        [
            _stage(ev, "validate", PATHS.schema.as_posix()),
            (
                [f"{PATHS.validation}: contract checked, passed {validation['passed']}"]
                if "passed" in validation
                else [],
                f"a current validation report{ev.why_not(PATHS.validation)}",
            ),
            _pipeline(ev),
        ],
    )


def _acts_on_useless_features(ev: Evidence) -> Need:
    """validate.importance's policy dropping, or failing on, a feature that adds nothing."""
    acts = ev.param("validate.importance.policy") in ("drop", "fail")
    return (
        ["params.yaml validate.importance: a feature adding nothing is dropped or fails"]
        if acts
        else [],
        "validate.importance.policy acting on a feature that adds nothing (drop | fail), "
        "not only reporting it",
    )


@_test("data", "All features are beneficial")
def _beneficial(ev: Evidence) -> Result:
    importance = _validation(ev).get("importance") or {}
    zero = importance.get("indistinguishable_from_zero") or "none"
    return ladder(
        [
            (
                [
                    f"{PATHS.validation} importance: {len(importance['features'])} features, "
                    f"indistinguishable from zero: {zero}"
                ]
                if importance.get("features")
                else [],
                "each feature's permutation importance (validate.importance.enabled)"
                + ev.why_not(PATHS.validation),
            )
        ],
        [_acts_on_useless_features(ev), _pipeline(ev)],
    )


@_test("data", "No feature's cost is too much")
def _cost(ev: Evidence) -> Result:
    """Each feature's cost measured beside its value on every run; what acts is the
    importance policy: a feature worth nothing costs too much whatever it costs. Whether
    a valuable feature is worth its cost stays a person's call (validation.md)."""
    costs = _validation(ev).get("cost")
    return ladder(
        [
            (
                [f"{PATHS.validation} cost: each feature's cost beside its value"] if costs else [],
                "each feature's cost (inference latency and model size without it) measured "
                f"against its value by validate (validate.cost){ev.why_not(PATHS.validation)}",
            )
        ],
        [_stage(ev, "validate"), _acts_on_useless_features(ev), _pipeline(ev)],
    )


@_test("data", "Features adhere to meta-level requirements")
def _meta(ev: Evidence) -> Result:
    validation = _validation(ev)
    protected = list(validation.get("protected") or [])
    leaked = sorted(set(protected) & set(validation.get("features") or []))
    kept_out = protected and not leaked
    tests = [*ev.tests_where(name=r"protected"), *ev.tests_where(path=r"identifiers")]
    return ladder(
        [
            (
                [f"{PATHS.validation}: protected {protected} kept out of the features"]
                if kept_out
                else [],
                f"protected attributes that are features: {leaked}"
                if leaked
                else "the attributes the model may not use, in params validate.protected, "
                f"kept out of the features by validate{ev.why_not(PATHS.validation)}",
            )
        ],
        [
            *_ci(ev, tests, "a protected attribute or an id becomes a feature"),
            _stage(ev, "validate"),
            _pipeline(ev),
        ],
    )


@_test("data", "The data pipeline has appropriate privacy controls")
def _privacy(ev: Evidence) -> Result:
    privacy = _validation(ev).get("privacy")
    findings = len(privacy.get("findings") or []) if isinstance(privacy, dict) else 0
    return ladder(
        [
            (
                [f"{PATHS.validation} privacy: passed {privacy['passed']}, {findings} findings"]
                if isinstance(privacy, dict) and "passed" in privacy
                else [],
                f"personal data scanned by validate{ev.why_not(PATHS.validation)}",
            )
        ],
        [
            *_ci(
                ev,
                ev.tests_where(imports="mlops.data.privacy"),
                "personal data reaches the features",
            ),
            _stage(ev, "validate"),
            _pipeline(ev),
        ],
    )


@_test("data", "New features can be added quickly")
def _new_features(ev: Evidence) -> Result:
    tests = ev.tests_where(
        name=r"add(?:s|ing)?_an?_(?:new_)?(?:feature|column)|new_(?:feature|column)"
    )
    documented = ev.documented(r"add(?:ing)? an? (?:new )?(?:feature|column)")
    return ladder(
        [
            (
                [*documented, *cite([t.id for t in tests])],
                "the steps to add a feature documented (README), or a test that adds one",
            )
        ],
        _ci(ev, tests, "a column added to the data and the contract does not reach the model"),
    )


@_test("data", "All input feature code is tested")
def _feature_code(ev: Evidence) -> Result:
    modules = [m for m in ev.modules if m.startswith(("mlops.features.", "mlops.data."))]
    untested = [m for m in modules if not ev.tests_where(imports=m)]
    tested = [m for m in modules if m not in untested]
    covering = list({t: None for m in tested for t in ev.tests_where(imports=m)[:1]})
    return ladder(
        [
            (
                [f"tests import {len(tested)} of {len(modules)} feature modules"] if tested else [],
                "tests of the feature code (src/mlops/features, src/mlops/data)",
            )
        ],
        [
            ([] if untested else ["every feature module"], f"tests importing {cite(untested)}"),
            *_ci(ev, covering, "the feature code breaks"),
        ],
    )


# --- Model development ----------------------------------------------------------------

_SPECIFICATION = ("params.yaml", "dvc.yaml", "src/mlops/tasks/families.py")


@_test("model", "Model specs are reviewed and submitted")
def _specs_reviewed(ev: Evidence) -> Result:
    owned = {path: ev.owners(path) for path in _SPECIFICATION}
    unowned = [path for path, owners in owned.items() if not owners]
    rules = [
        f"{path}: pull requests need a code owner's review"
        for path, ruleset in ev.rulesets.items()
        if _requires_review(ruleset)
    ]
    return ladder(
        [
            (
                [] if unowned else [f"{CODEOWNERS}: owners for {', '.join(_SPECIFICATION)}"],
                f"code owners in {CODEOWNERS} for {', '.join(unowned)} (a team or users, "
                f"not the template's {PLACEHOLDER_OWNER}... placeholder)",
            ),
            (
                ev.runs(r"pr-report|dvc (?:params|metrics) diff", frozenset({"pull_request"})),
                "a pull-request report showing the params diff",
            ),
        ],
        [
            (
                rules,
                f"a branch ruleset in {RULESETS}/ (imported in the repository's settings) that "
                "requires a code owner's review",
            ),
            (
                ev.runs(
                    r"commits/\S+/pulls\b[\s\S]*?\bAPPROVED\b[\s\S]*?\bmlops promote\b",
                    frozenset({"push"}),
                ),
                "a CD workflow that asks GitHub's API whether the commit is a merged pull "
                "request's, approved by another person, before `mlops promote` "
                "(.github/scripts/reviewed-pr.py)",
            ),
        ],
    )


def _requires_review(ruleset: Any) -> bool:
    if not isinstance(ruleset, dict) or ruleset.get("enforcement") != "active":
        return False
    return any(
        rule.get("type") == "pull_request"
        and (rule.get("parameters") or {}).get("require_code_owner_review") is True
        for rule in ruleset.get("rules") or []
        if isinstance(rule, dict)
    )


@_test("model", "Offline and online metrics correlate")
def _correlate(ev: Evidence) -> Result:
    correlation = (_evaluation(ev).get("business") or {}).get("correlation") or {}
    return ladder(
        [
            (
                [
                    f"{PATHS.evaluation} business.correlation: Spearman "
                    f"{correlation.get('spearman')} over {len(correlation.get('trials', []))} "
                    "refitted trials"
                ]
                if correlation.get("available")
                else [],
                "the model metric's correlation with business value measured "
                f"(evaluate.business){ev.why_not(PATHS.evaluation)}",
            )
        ],
        [
            (
                _gate_checks(ev, r"business_correlation"),
                "a gate threshold on business_correlation (gate.minimum)",
            ),
            _gate_enforced(ev),
        ],
    )


@_test("model", "All hyperparameters have been tuned")
def _tuned(ev: Evidence) -> Result:
    tuning = ev.report(PATHS.tuning_dir / "metrics.json") or {}
    return ladder(
        [
            _stage(ev, "tune"),
            (
                [f"reports/tuning/metrics.json: {tuning['trials']} trials"]
                if tuning.get("trials")
                else [],
                f"a tuning run{ev.why_not(PATHS.tuning_dir / 'metrics.json')}",
            ),
        ],
        [
            *_ci(
                ev,
                ev.tests_where(path=r"hyperparameters"),
                "a hyperparameter is neither searched nor fixed",
            ),
            _pipeline(ev),
        ],
    )


@_test("model", "The impact of model staleness is known")
def _staleness_known(ev: Evidence) -> Result:
    staleness = _evaluation(ev).get("staleness")
    fit = staleness.get("fit") if isinstance(staleness, dict) else None
    measured = fit
    limit = ev.param("gate.max_age_days")
    return ladder(
        [
            (
                [f"{PATHS.evaluation} staleness.fit: decay per day {fit['decay_per_day']}"]
                if isinstance(fit, dict)
                else ["the model's decay with the age of its data, measured"]
                if measured
                else [],
                "the model's decay measured on later data (evaluate.staleness: a time column "
                f"or a held-out stream), not assumed{ev.why_not(PATHS.evaluation)}",
            )
        ],
        [
            (
                [f"params.yaml gate.max_age_days: {limit}"] if limit == "measured" else [],
                "an age limit derived from that decay (gate.max_age_days: measured)",
            ),
            _gate_enforced(ev),
        ],
    )


def _gated(ev: Evidence, half: Sequence[str], missing: str, pattern: str, names: str) -> Result:
    return ladder(
        [(half, f"{missing}{ev.why_not(PATHS.evaluation)}")],
        [(_gate_checks(ev, pattern), f"a gate threshold on {names}"), _gate_enforced(ev)],
    )


@_test("model", "A simpler model is not better")
def _simpler(ev: Evidence) -> Result:
    baselines = sorted(_evaluation(ev).get("baselines") or {})
    return _gated(
        ev,
        [f"{PATHS.evaluation} baselines: {', '.join(baselines)}"] if baselines else [],
        "the model scored beside simple baselines",
        r"^baseline_margin\.",
        "the margin over the baselines (gate.baseline_margin)",
    )


@_test("model", "Model quality is sufficient on important data slices")
def _slices(ev: Evidence) -> Result:
    slices = _evaluation(ev).get("slices") or {}
    return _gated(
        ev,
        [f"{PATHS.evaluation} slices: {slices['measured']} measured, worst {slices['worst']}"]
        if slices.get("measured")
        else [],
        "the target metric per slice (evaluate.slices)",
        r"slice_(?:worst|gap)",
        "slice_worst or slice_gap",
    )


@_test("model", "The model is tested for considerations of inclusion")
def _inclusion(ev: Evidence) -> Result:
    protected = set(_validation(ev).get("protected") or [])
    rows = (_evaluation(ev).get("slices") or {}).get("slices") or []
    covered = sorted({r["attribute"] for r in rows if r.get("attribute") in protected})
    return _gated(
        ev,
        [f"{PATHS.evaluation} slices by protected attributes {covered}, selection rates"]
        if covered
        else [],
        "performance and selection rate per protected attribute (evaluate.slices.columns)",
        # The thresholds themselves: fairness.unmeasurable_groups only says what a group
        # too small to measure does, and under policy `pass` it can never fail.
        r"selection_rate|true_positive_rate|tpr|parity|inclusion",
        "selection-rate ratio or true-positive-rate gap per protected attribute",
    )


# --- ML infrastructure ----------------------------------------------------------------


@_test("infrastructure", "Training is reproducible")
def _reproducible(ev: Evidence) -> Result:
    unlocked = sorted(set(ev.stages) - ev.locked)
    return ladder(
        [
            (
                ["params.yaml seed", "dvc.lock records every stage"]
                if ev.param("seed") is not None and ev.stages and not unlocked
                else [],
                f"a seed in params.yaml and dvc.lock recording {unlocked or 'every stage'}",
            )
        ],
        _ci(
            ev,
            ev.tests_where(name=r"identical|reproduc|deterministic"),
            "training twice gives different bytes",
        ),
    )


@_test("infrastructure", "Model specs are unit tested")
def _specs_tested(ev: Evidence) -> Result:
    tests = ev.tests_where(path=r"^tests/(?:unit|model)/", imports="mlops.tasks.families")
    needs = _ci(ev, tests, "a model family's specification is broken")
    return ladder(needs[:1], needs[1:])


@_test("infrastructure", "The ML pipeline is integration tested")
def _integration(ev: Evidence) -> Result:
    tests = ev.tests_where(path=r"^tests/e2e/", text=r"\brepro\b")
    needs = _ci(ev, tests, "`dvc repro` of the whole pipeline breaks")
    return ladder(needs[:1], needs[1:])


@_test("infrastructure", "Model quality is validated before serving")
def _validated(ev: Evidence) -> Result:
    gate = ev.report(PATHS.gate) or {}
    return ladder(
        [
            _stage(ev, "gate"),
            (
                [f"{PATHS.gate}: {gate['summary']}"] if "summary" in gate else [],
                f"a current gate verdict{ev.why_not(PATHS.gate)}",
            ),
        ],
        [
            (
                ev.runs(r"mlops gate --check\b[\s\S]*?mlops promote\b"),
                "a workflow that runs `mlops gate --check` before `mlops promote`",
            )
        ],
    )


@_test("infrastructure", "The model is debuggable")
def _debuggable(ev: Evidence) -> Result:
    explain = "src/mlops/stages/explain.py"
    tests = [
        *ev.tests_where(imports="mlops.evaluation.explaining"),
        *ev.tests_where(text=r"\bmlops\W+explain\b|\[\"explain\""),
    ]
    return ladder(
        [(["`mlops explain`: why the model answered a row"] if ev.has(explain) else [], explain)],
        _ci(ev, tests, "explaining a prediction breaks"),
    )


@_test("infrastructure", "Models are canaried before serving")
def _canaried(ev: Evidence) -> Result:
    canary = ev.param("respond.canary")
    return ladder(
        [
            (
                ["params.yaml respond.canary"] if isinstance(canary, dict) else [],
                "a canary of the candidate on production's recent inputs (respond.canary)",
            )
        ],
        [
            (
                ev.runs(r"mlops promote\b"),
                "a workflow promoting with `mlops promote` (it canaries first)",
            ),
            *_ci(ev, ev.tests_where(path=r"canary"), "a canary that disagrees is promoted"),
        ],
    )


@_test("infrastructure", "Serving models can be rolled back")
def _rollback(ev: Evidence) -> Result:
    drill = ev.scheduled(r"mlops rollback\b|rollback drill")
    tests = ev.tests_where(path=r"rollback")
    return ladder(
        [
            (
                ev.runs(r"mlops rollback\b", frozenset({"workflow_dispatch"})),
                "a workflow that rolls production back (rollback.yml)",
            )
        ],
        [(drill, "")] if drill else _ci(ev, tests, "a rollback does not restore the model"),
    )


# --- Monitoring -----------------------------------------------------------------------


@_test("monitoring", "Dependency changes result in notification")
def _dependencies(ev: Evidence) -> Result:
    updates = ev.dependabot.get("updates") or []
    ecosystems = {str(u.get("package-ecosystem")) for u in updates if isinstance(u, dict)}
    code = [f"{DEPENDABOT}: {e}" for e in sorted(ecosystems & {"pip", "uv"})]
    actions = [f"{DEPENDABOT}: github-actions"] if "github-actions" in ecosystems else []
    # A retraining pull request says the model changed, not the source: the data's
    # notification is the source's fingerprint compared on a schedule.
    data = ev.runs(
        r"dvc update --no-download|dvc status (?:-c|--cloud)",
        frozenset({"schedule"}),
        also=r"gh issue create",
    )
    return ladder(
        [
            (
                [*code, *actions, *data],
                f"{DEPENDABOT} for the lock file and the actions, or a scheduled data check",
            )
        ],
        [
            (code, f"{DEPENDABOT} watching the Python lock (package-ecosystem uv or pip)"),
            (actions, f"{DEPENDABOT} watching the workflows' actions (github-actions)"),
            (
                data,
                "a scheduled workflow comparing the data source's fingerprint with the "
                "recorded one (`dvc update --no-download`) that opens an issue when it "
                "changed (data-fingerprint.yml)",
            ),
        ],
    )


@_test("monitoring", "Data invariants hold for inputs")
def _invariants(ev: Evidence) -> Result:
    return _monitored(ev, ("input_quality",))


@_test("monitoring", "Training and serving are not skewed")
def _skew(ev: Evidence) -> Result:
    parity = ev.tests_where(path=r"imputation_serving")
    return _monitored(ev, ("drift",), cite([t.id for t in parity]))


@_test("monitoring", "Models are not too stale")
def _stale(ev: Evidence) -> Result:
    limit = ev.param("gate.max_age_days")
    at_promotion = _gate_enforced(ev)[0] if limit is not None else []
    refused = [f"params.yaml gate.max_age_days {limit}, checked at promotion:", *at_promotion]
    return _monitored(ev, ("staleness",), refused if at_promotion else [])


@_test("monitoring", "Models are numerically stable")
def _stable(ev: Evidence) -> Result:
    return _monitored(ev, ("stability",))


@_test("monitoring", "Computing performance has not regressed")
def _computing(ev: Evidence) -> Result:
    ratio = ev.param("respond.canary.max_latency_ratio")
    promotion = ev.runs(r"mlops promote\b") if ratio is not None else []
    canary = [f"params.yaml respond.canary.max_latency_ratio {ratio}, at promotion:", *promotion]
    return _monitored(ev, ("latency",), canary if promotion else [])


@_test("monitoring", "Prediction quality has not regressed")
def _quality(ev: Evidence) -> Result:
    degradation = _gate_checks(ev, r"^max_degradation\.")
    return _monitored(
        ev,
        ("performance", "estimated_performance"),
        [*degradation, *_gate_enforced(ev)[0]] if degradation else [],
    )
