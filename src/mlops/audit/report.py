"""The audit's result: each test's score, the four section sums, the final score (the
minimum over sections, as the paper defines it), as audit.json and audit.md.

audit.md opens with what fell since a base audit (e.g. the pull request's base
branch's audit.json), so a pull request that lowers the score says so first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops.audit.evidence import Evidence
from mlops.audit.rubric import RUBRIC, SECTIONS, score
from mlops.errors import UsageError

PAPER = (
    'Breck, Cai, Nielsen, Salib, Sculley: "The ML Test Score: A Rubric for ML Production '
    'Readiness and Technical Debt Reduction", IEEE Big Data 2017'
)


def audit(evidence: Evidence) -> dict[str, Any]:
    """audit.json's document: every test scored, summed per section, and the final score."""
    tests: list[dict[str, Any]] = []
    for test in RUBRIC:
        result = score(test, evidence)
        tests.append(
            {
                "id": test.id,
                "section": test.section,
                "name": test.name,
                "score": result.score,
                "evidence": list(result.evidence),
                "missing": result.missing,
            }
        )
    sections = {key: sum(t["score"] for t in tests if t["section"] == key) for key in SECTIONS}
    return {
        "rubric": PAPER,
        "score": min(sections.values()),
        "sections": sections,
        "stale": sorted(evidence.stale.values()),
        "tests": tests,
    }


def dropped(document: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """The tests that score lower than in ``base``, as "id name: before -> now"."""
    before = {t["id"]: t["score"] for t in base.get("tests", []) if isinstance(t, Mapping)}
    return [
        f"{t['id']} {t['name']}: {_points(before[t['id']])} -> {_points(t['score'])}"
        for t in document["tests"]
        if t["id"] in before and t["score"] < before[t["id"]]
    ]


def markdown(document: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> str:
    lines = ["# ML Test Score self-audit", ""]
    if base is not None:
        lines += _against(document, base)
    sections = document["sections"]
    lines += [
        f"**Final score {_points(document['score'])}** (the lowest section; each section "
        f"is out of 7). Rubric: {document['rubric']}.",
        "",
        "| Section | Score |",
        "|---|---|",
        *(f"| {SECTIONS[key]} | {_points(value)} |" for key, value in sections.items()),
        "",
        "0.5: done by hand and documented; 1: automated, run repeatedly, and failing when "
        "the property breaks. See docs/audit.md.",
        "",
    ]
    if document["stale"]:
        lines += ["Evidence about another model, not scored:", ""]
        lines += [f"- {note}" for note in document["stale"]] + [""]
    for key, title in SECTIONS.items():
        lines += [
            f"## {title}: {_points(sections[key])} / 7",
            "",
            "| Test | Score | Evidence | Next half point needs |",
            "|---|---|---|---|",
        ]
        lines += [_row(t) for t in document["tests"] if t["section"] == key] + [""]
    return "\n".join(lines)


def _against(document: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    before = base.get("score")
    fell = dropped(document, base)
    if isinstance(before, int | float) and document["score"] < before:
        head = (
            f"> **The ML Test Score dropped: {_points(before)} -> "
            f"{_points(document['score'])}** (against the base audit)."
        )
    elif fell:
        head = "> **Tests scored lower than in the base audit** (the final score held)."
    else:
        now = _points(document["score"])
        return [
            f"No test scored lower than in the base audit (final {_points(before)} -> {now}).",
            "",
        ]
    return [head, ">", *(f"> - {line}" for line in fell), ""]


def _row(test: Mapping[str, Any]) -> str:
    evidence = "<br>".join(_cell(e) for e in test["evidence"]) or "none"
    return (
        f"| {test['id']} {_cell(test['name'])} | {_points(test['score'])} | {evidence} | "
        f"{_cell(test['missing']) or '-'} |"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _points(value: Any) -> str:
    return f"{float(value):g}" if isinstance(value, int | float) else str(value)


def check_base(base: Any, source: str) -> Mapping[str, Any]:
    """A base audit.json's content; anything else is a UsageError naming the file."""
    if not isinstance(base, Mapping) or not isinstance(base.get("tests"), Sequence):
        raise UsageError(f"{source}: not an audit.json (expected a `tests` list)")
    if not isinstance(base.get("score"), int | float):
        raise UsageError(f"{source}: not an audit.json (expected a numeric `score`)")
    return base
