"""What the audit looks at, read once: the repository's files and the records of what ran.

Everything is read when the audit starts (``read_evidence``); the checks are pure
functions of the ``Evidence`` it returns. A pipeline report counts only when its bytes
are the ones dvc.lock records (the run that produced it is the one DVC knows), and a
monitoring verdict (the summary the scheduled monitor commits, monitoring/latest.json,
or a report run here, reports/monitoring/monitoring.json) only when it judged the model
models/production.json names and is at most a week old: anything else is evidence
about another model or another time, listed as stale and not scored. A file that is
there but unreadable is bad input (a UsageError naming it); a missing one is evidence
that is missing, and the checks that needed it say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pathspec
import yaml

from mlops.config import PARAMS_FILE, PATHS, parse_params
from mlops.errors import UsageError
from mlops.io import files, git

MONITORING = PATHS.monitoring
# The verdict the scheduled monitor commits (.github/scripts/monitor.sh), for machines.
MONITORING_SUMMARY = PATHS.decisions.parent / "latest.json"
# A verdict older than this is no evidence that monitoring runs: monitor.yml runs
# daily, so a week without one means its schedule or its log source stopped.
MONITORING_MAX_AGE = timedelta(days=7)
DECISIONS = PATHS.decisions
REVIEWS = Path("docs/reviews.yaml")
WORKFLOWS = Path(".github/workflows")
CODEOWNERS = Path(".github/CODEOWNERS")
DEPENDABOT = Path(".github/dependabot.yml")
RULESETS = Path(".github/rulesets")
# .github/CODEOWNERS as the template ships it names this team: nobody, until replaced.
PLACEHOLDER_OWNER = "@your-org/"
# The model's measured decay with the age of its data (issue 15's staleness measurement).
# The pipeline's JSON reports the checks read; each must match its md5 in dvc.lock.
REPORTS = (
    PATHS.validation,
    PATHS.evaluation,
    PATHS.gate,
    PATHS.tuning_dir / "metrics.json",
)
# Text the checks search: how-tos a team documents by hand.
DOCUMENTS = (Path("README.md"), Path("docs"))
# Triggers that run a workflow again and again without anyone asking.
REPEATED = frozenset({"push", "pull_request", "pull_request_target", "merge_group", "schedule"})
_FROM_IMPORT = re.compile(r"^\s*from\s+(mlops[\w.]*)\s+import\s+(\([^)]*\)|[^\n]*)", re.MULTILINE)
_IMPORT = re.compile(r"^\s*import\s+(mlops[\w.]*)", re.MULTILINE)
_TEST_DEF = re.compile(r"^(?:async\s+)?def\s+(test_\w+)", re.MULTILINE)
# A script a step calls, and its first argument when that is a word (an action).
_SCRIPT = re.compile(r"([\w./-]+\.(?:sh|py)|\.ci/run)\b(?:[ \t]+([a-z][\w-]*)\b)?")
_MAKE = re.compile(r"\bmake\s+([\w\s-]+)")


@dataclass(frozen=True)
class Workflow:
    path: str
    triggers: frozenset[str]
    # The steps' shell text in order, each followed by the make targets and scripts it
    # calls, spelled out: what comes first in it runs first.
    commands: str


@dataclass(frozen=True)
class TestCase:
    id: str
    slow: bool

    @property
    def file(self) -> str:
        return self.id.partition("::")[0]


@dataclass(frozen=True)
class Review:
    """A test done by hand: who did it, when, and the commit they looked at."""

    test: str
    by: str
    on: str
    commit: str
    # What was reviewed: a change to these files since ``commit`` makes the review stale.
    paths: tuple[str, ...] = ()

    def cite(self) -> str:
        return f"{REVIEWS}: {self.test} done by {self.by} on {self.on} at {self.commit[:12]}"


@dataclass(frozen=True)
class Evidence:
    params: Mapping[str, Any]
    stages: Mapping[str, Any]
    locked: frozenset[str]
    reports: Mapping[str, Any]
    stale: Mapping[str, str]
    workflows: tuple[Workflow, ...]
    tests: tuple[TestCase, ...]
    test_texts: Mapping[str, str]
    # The project modules each test file imports (``from mlops.data import privacy``
    # counts as mlops.data.privacy).
    test_imports: Mapping[str, frozenset[str]]
    present: frozenset[str]
    texts: Mapping[str, str]
    codeowners: tuple[tuple[str, tuple[str, ...]], ...]
    dependabot: Mapping[str, Any]
    rulesets: Mapping[str, Any]
    reviews: tuple[Review, ...]
    # The newest current monitoring verdict, and the file it came from.
    monitoring: Mapping[str, Any] | None
    monitoring_source: str
    decisions: tuple[Mapping[str, Any], ...]
    modules: tuple[str, ...]

    # --- lookups the checks share -------------------------------------------------------

    def param(self, dotted: str) -> Any:
        """params.yaml's value at ``a.b.c``; None when a key on the way is absent."""
        value: Any = self.params
        for key in dotted.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    def report(self, path: Path) -> Any:
        """A pipeline report's content when it is the one dvc.lock records, else None."""
        return self.reports.get(path.as_posix())

    def why_not(self, path: Path) -> str:
        """Why the report ``path`` is not evidence, in brackets: stale (and why) or missing;
        "" when it is current (then what is missing is in it)."""
        name = path.as_posix()
        if name in self.reports:
            return ""
        return f" ({self.stale.get(name, f'{name} missing')})"

    def why_no_monitoring(self) -> str:
        """Why there is no current monitoring verdict, in brackets ("" when there is)."""
        if self.monitoring is not None:
            return ""
        names = [p.as_posix() for p in (MONITORING_SUMMARY, MONITORING)]
        reasons = [self.stale[n] for n in names if n in self.stale]
        return f" ({'; '.join(reasons) or f'{names[0]} missing'})"

    def has(self, path: Path | str) -> bool:
        return Path(path).as_posix() in self.present

    def runs(self, pattern: str, triggers: frozenset[str] = REPEATED, also: str = "") -> list[str]:
        """Each workflow started by one of ``triggers`` whose commands match ``pattern``
        (and ``also``, when given)."""
        found = []
        for workflow in self.workflows:
            on = sorted(workflow.triggers & triggers)
            match = re.search(pattern, workflow.commands)
            if on and match and re.search(also, workflow.commands):
                command = " ".join(match.group(0).split())
                found.append(f"{workflow.path} ({', '.join(on)}) runs `{command}`")
        return found

    def scheduled(self, pattern: str) -> list[str]:
        return self.runs(pattern, frozenset({"schedule"}))

    def pipeline_runs(self) -> list[str]:
        """Workflows that reproduce the whole pipeline: its failing stages fail them."""
        return self.runs(r"\b(?:make repro|dvc repro)(?![ \t]+\w)")

    def test_runs(self) -> list[str]:
        return self.runs(r"\bpytest\b")

    def tests_where(
        self, name: str = "", text: str = "", path: str = "", imports: str = ""
    ) -> list[TestCase]:
        """Tests whose name matches ``name``, in files matching ``path`` whose text matches
        ``text`` (each a regular expression; empty: any) and that import module ``imports``."""
        chosen = {
            file
            for file, content in self.test_texts.items()
            if re.search(path, file)
            and (not text or re.search(text, content))
            and (not imports or imports in self.test_imports[file])
        }
        return [
            test
            for test in self.tests
            if test.file in chosen and re.search(name, test.id.partition("::")[2])
        ]

    def ci_excludes_slow(self) -> bool:
        return any(re.search(r"not\s+slow", w.commands) for w in self.workflows)

    def documented(self, pattern: str) -> list[str]:
        """Documents (README, docs/) whose text matches ``pattern`` (case-insensitive)."""
        return [
            f"{path} documents `{match.group(0)}`"
            for path, text in self.texts.items()
            if (match := re.search(pattern, text, re.IGNORECASE))
        ]

    def owners(self, path: str) -> tuple[str, ...]:
        """The code owners of ``path`` by .github/CODEOWNERS (the last matching line wins)."""
        owners: tuple[str, ...] = ()
        for pattern, names in self.codeowners:
            if pathspec.GitIgnoreSpec.from_lines([pattern]).match_file(path):
                owners = names
        return tuple(o for o in owners if not o.startswith(PLACEHOLDER_OWNER))

    def reviewed(self, test_id: str) -> Review | None:
        return next((r for r in reversed(self.reviews) if r.test == test_id), None)


# --- reading --------------------------------------------------------------------------


def read_evidence(root: Path, params: Path = PARAMS_FILE) -> Evidence:
    """Everything the checks look at, read from the repository at ``root`` (``params``
    relative to it, unless absolute)."""
    raw = files.read_yaml(root / params, "params file")
    parse_params(raw, str(root / params))
    dvc_yaml = _yaml(root / "dvc.yaml", "pipeline definition") or {}
    lock = _yaml(root / PATHS.dvc_lock, "DVC lock file") or {}
    recorded = _recorded_md5s(lock)
    reports, stale = _reports(root, recorded)
    production = _json(root / PATHS.production, "production manifest")
    monitoring_source, monitoring = _monitoring(root, production, stale)
    tests, test_texts = _tests(root / "tests", root)
    reviews = _current_reviews(root, _reviews(root / REVIEWS), stale)
    return Evidence(
        params=raw,
        stages=dict(dvc_yaml.get("stages") or {}),
        locked=frozenset((lock.get("stages") or {}).keys()),
        reports=reports,
        stale=stale,
        workflows=_workflows(root),
        tests=tests,
        test_texts=test_texts,
        test_imports={name: _imported(text) for name, text in test_texts.items()},
        present=frozenset(_present(root)),
        texts=_documents(root),
        codeowners=_codeowners(root / CODEOWNERS),
        dependabot=_yaml(root / DEPENDABOT, "Dependabot configuration") or {},
        rulesets={
            p.relative_to(root).as_posix(): _json(p, "branch ruleset")
            for p in sorted((root / RULESETS).glob("*.json"))
        },
        reviews=reviews,
        monitoring=monitoring,
        monitoring_source=monitoring_source,
        decisions=_decisions(root / DECISIONS),
        modules=tuple(
            p.relative_to(root / "src").with_suffix("").as_posix().replace("/", ".")
            for p in sorted((root / "src/mlops").rglob("*.py"))
            if p.name != "__init__.py"
        ),
    )


def _yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        return None
    try:
        return yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise UsageError(f"{path}: {what} is not valid YAML ({detail})") from None


def _json(path: Path, what: str) -> Any:
    return files.read_json(path, what) if path.is_file() else None


def _recorded_md5s(lock: Mapping[str, Any]) -> dict[str, str]:
    """Each output dvc.lock records, by path: the md5 of the bytes its last run wrote."""
    return {
        str(out["path"]): str(out.get("md5"))
        for stage in (lock.get("stages") or {}).values()
        for out in stage.get("outs", [])
    }


def _reports(root: Path, recorded: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    reports: dict[str, Any] = {}
    stale: dict[str, str] = {}
    for path in REPORTS:
        data = files.read_optional(root / path)
        if data is None:
            continue
        name = path.as_posix()
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{root / path}: report is not valid JSON ({exc})") from None
        if name not in recorded:
            stale[name] = f"{name} is stale: dvc.lock records no run that wrote it"
        elif files.bytes_md5(data) != recorded[name]:
            stale[name] = f"{name} is stale: its bytes are not the ones dvc.lock records"
        else:
            reports[name] = document
    return reports, stale


def _monitoring(root: Path, production: Any, stale: dict[str, str]) -> tuple[str, Any]:
    """The newest monitoring verdict that is current (its file, its content), else
    ("", None); each one that is not goes to ``stale``."""
    now = datetime.now(UTC)
    current: list[tuple[datetime, str, Any]] = []
    for path in (MONITORING_SUMMARY, MONITORING):
        document = _json(root / path, "monitoring report")
        if document is None:
            continue
        if not isinstance(document, dict):
            raise UsageError(f"{root / path}: monitoring report is not a JSON object")
        when = _time(document.get("monitored_at"))
        reason = _other_model(document, production)
        if not reason and when is None:
            reason = "it does not say when it ran (monitored_at)"
        elif not reason and when is not None and now - when > MONITORING_MAX_AGE:
            reason = (
                f"it ran on {when:%Y-%m-%d}, {(now - when).days} days ago (more than "
                f"{MONITORING_MAX_AGE.days}: is the scheduled monitor running?)"
            )
        if reason:
            stale[path.as_posix()] = f"{path} is stale: {reason}"
        elif when is not None:
            current.append((when, path.as_posix(), document))
    if not current:
        return "", None
    _, source, document = max(current, key=lambda c: c[0])
    return source, document


def _time(value: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _other_model(monitoring: Mapping[str, Any], production: Any) -> str:
    """Why a monitoring verdict is about another model than production's ("" if not)."""
    judged = monitoring.get("model_version")
    serving = production.get("version") if isinstance(production, dict) else None
    if serving is None:
        return f"it judged {judged}, and {PATHS.production} names no model in production"
    if judged != serving:
        return f"it judged {judged}, production serves {serving}"
    return ""


def _workflows(root: Path) -> tuple[Workflow, ...]:
    makefile = files.read_optional(root / "Makefile")
    recipes = _make_recipes(makefile.decode("utf-8", "replace") if makefile else "")
    found = []
    for path in sorted((root / WORKFLOWS).glob("*.y*ml")):
        document = _yaml(path, "workflow")
        if not isinstance(document, dict):
            raise UsageError(f"{path}: workflow is not a mapping")
        # YAML 1.1 reads the key `on` as True.
        triggers = document.get("on", document.get(True))
        commands = "\n".join(
            _expand(str(step.get("run", "")), recipes, root)
            for job in (document.get("jobs") or {}).values()
            for step in (job or {}).get("steps", [])
            if isinstance(step, dict)
        )
        found.append(
            Workflow(path.relative_to(root).as_posix(), _trigger_names(triggers), commands)
        )
    return tuple(found)


def _trigger_names(triggers: Any) -> frozenset[str]:
    if isinstance(triggers, str):
        return frozenset({triggers})
    if isinstance(triggers, Iterable):
        return frozenset(str(t) for t in triggers)
    return frozenset()


def _make_recipes(makefile: str) -> dict[str, str]:
    """Each make target's recipe, its prerequisites' recipes first."""
    own: dict[str, tuple[list[str], list[str]]] = {}
    target = None
    for line in makefile.splitlines():
        if line.startswith("\t") and target:
            own[target][1].append(line.strip())
        elif match := re.match(r"^([\w-]+):(?!=)([^#]*)", line):
            target = match.group(1)
            own[target] = (match.group(2).split(), [])
        else:
            target = None

    def recipe(name: str, seen: frozenset[str]) -> str:
        deps, lines = own.get(name, ([], []))
        before = [recipe(d, seen | {name}) for d in deps if d in own and d not in seen]
        return "\n".join([*before, *lines])

    return {name: recipe(name, frozenset()) for name in own}


def _expand(commands: str, recipes: Mapping[str, str], root: Path) -> str:
    """``commands`` followed by the recipes of the make targets and the scripts it calls
    (of a script called with an action, the ``case`` branches for that action only)."""
    parts = [commands]
    for match in _MAKE.finditer(commands):
        parts.extend(recipes.get(name, "") for name in match.group(1).split())
    calls = {(m.group(1), m.group(2)) for m in _SCRIPT.finditer("\n".join(parts))}
    for name, action in sorted(calls, key=str):
        script = root / name
        if script.is_file() and script.resolve().is_relative_to(root.resolve()):
            text = script.read_text(encoding="utf-8", errors="replace")
            parts.append(_case_branches(text, action) if action else text)
    return "\n".join(parts)


def _case_branches(script: str, action: str) -> str:
    """The ``case`` branches of a shell script that ``action`` selects; all of it if none."""
    label = rf"^[ \t]*(?:[\w-]+[ \t]*\|[ \t]*)*{re.escape(action)}(?:[ \t]*\|[ \t]*[\w-]+)*[ \t]*\)"
    branches = re.findall(label + r"(.*?);;", script, re.MULTILINE | re.DOTALL)
    return "\n".join(branches) if branches else script


def _tests(folder: Path, root: Path) -> tuple[tuple[TestCase, ...], dict[str, str]]:
    """Every test function of the suite, read from the files (pytest is not run)."""
    cases: list[TestCase] = []
    texts: dict[str, str] = {}
    for path in sorted(folder.rglob("test_*.py")):
        name = path.relative_to(root).as_posix()
        text = texts[name] = path.read_text(encoding="utf-8", errors="replace")
        whole_file_slow = bool(re.search(r"^pytestmark\s*=.*mark\.slow", text, re.MULTILINE))
        decorators: list[str] = []
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("@"):
                decorators.append(stripped)
            elif match := _TEST_DEF.match(stripped):
                if not any("mark.skip" in d for d in decorators):
                    slow = whole_file_slow or any("mark.slow" in d for d in decorators)
                    cases.append(TestCase(f"{name}::{match.group(1)}", slow))
                decorators = []
            elif stripped and not line[0].isspace():
                decorators = []
    return tuple(cases), texts


def _imported(text: str) -> frozenset[str]:
    modules = set(_IMPORT.findall(text))
    for package, names in _FROM_IMPORT.findall(text):
        modules.add(package)
        for name in re.findall(r"\w+", names.split("#")[0] if "(" not in names else names):
            modules.add(f"{package}.{name}")
    return frozenset(modules)


def _present(root: Path) -> Iterable[str]:
    """The files whose presence alone is evidence: the contract and the commands."""
    if (root / PATHS.schema).is_file():
        yield PATHS.schema.as_posix()
    yield from (
        p.relative_to(root).as_posix() for p in sorted((root / "src/mlops/stages").glob("*.py"))
    )


def _documents(root: Path) -> dict[str, str]:
    texts = {}
    for place in DOCUMENTS:
        paths = sorted((root / place).glob("*.md")) if (root / place).is_dir() else [root / place]
        for path in paths:
            if path.is_file():
                texts[path.relative_to(root).as_posix()] = path.read_text("utf-8", "replace")
    return texts


def _codeowners(path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    data = files.read_optional(path)
    rules = []
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            rules.append((words[0], tuple(words[1:])))
    return tuple(rules)


def _reviews(path: Path) -> tuple[Review, ...]:
    document = _yaml(path, "reviews file") or {}
    entries = document.get("reviews") if isinstance(document, dict) else None
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise UsageError(f"{path}: `reviews` must be a list of test, by, on, commit entries")
    reviews = []
    for index, entry in enumerate(entries):
        fields = entry if isinstance(entry, dict) else {}
        missing = [k for k in ("test", "by", "on", "commit") if not fields.get(k)]
        commit = str(fields.get("commit", ""))
        if missing or not re.fullmatch(r"[0-9a-f]{7,40}", commit):
            what = f"lacks {', '.join(missing)}" if missing else f"commit {commit!r} is no git id"
            raise UsageError(f"{path}: reviews[{index}] {what} (expected test, by, on, commit)")
        paths = fields.get("paths") or []
        if not isinstance(paths, list):
            raise UsageError(f"{path}: reviews[{index}] paths must be a list of files")
        test, by, on = (str(fields[k]) for k in ("test", "by", "on"))
        reviews.append(Review(test, by, on, commit, tuple(str(p) for p in paths)))
    return tuple(reviews)


def _current_reviews(
    root: Path, reviews: Sequence[Review], stale: dict[str, str]
) -> tuple[Review, ...]:
    """The reviews whose files are as they were reviewed; the others go to ``stale``."""
    current = []
    for review in reviews:
        reason = ""
        if review.paths:
            try:
                changed = git.call(
                    "diff", "--name-only", review.commit, "--", *review.paths, cwd=root
                )
            except UsageError:
                reason = f"commit {review.commit[:12]} is not in this clone"
            else:
                reason = f"{', '.join(changed.split())} changed since" if changed.strip() else ""
        if reason:
            key = f"{REVIEWS}: {review.test} by {review.by}"
            stale[key] = f"{key} is stale: {reason}"
        else:
            current.append(review)
    return tuple(current)


def _decisions(path: Path) -> tuple[Mapping[str, Any], ...]:
    data = files.read_optional(path)
    records = []
    for number, line in enumerate((data or b"").decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise UsageError(f"{path}: line {number} is not valid JSON") from None
    return tuple(records)


def cite(items: Sequence[str], limit: int = 3) -> list[str]:
    """At most ``limit`` items, and how many more there are."""
    shown = list(items[:limit])
    return [*shown, f"(+{len(items) - limit} more)"] if len(items) > limit else shown
