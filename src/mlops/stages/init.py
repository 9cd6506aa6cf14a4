"""Command ``init``: onboard a data file in one command.

``mlops init --data FILE --target COLUMN [--task auto] [--positive LABEL]`` sniffs
how FILE reads (Parquet or CSV, gzipped or not, separator, decimal mark, header,
missing-value markers), infers the task from the target, writes params.yaml's ``data`` section
and resets every demo-specific setting (keeping the file's comments), drafts
data/schema.yaml, and prints what to review. Every check runs before anything is
written: a bad file or target, or local edits init would overwrite, end in one line
and exit 2 with nothing changed. Then ``make repro`` runs the pipeline on the data.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops.config import PATHS, DataConfig, DecimalMark, Params, parse_params
from mlops.errors import UsageError
from mlops.io import files, git, tables

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from mlops.onboarding.profile import TargetProfile
    from mlops.onboarding.sniff import Layout
    from mlops.tasks.metrics import TaskName

SUMMARY = "onboard a data file: mlops init --data FILE --target COLUMN"

_EXTERNAL = Path("data/external")
_TASKS = ("auto", "binary", "multiclass", "regression")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="a CSV (or gzipped) or Parquet")
    parser.add_argument("--target", required=True, help="the column to predict")
    parser.add_argument("--task", choices=_TASKS, default="auto", help="default: %(default)s")
    parser.add_argument(
        "--positive", help="binary: the target's label that means 1 (when it can't be told)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite local edits of params.yaml keys"
    )
    parser.add_argument(
        "--no-dvc", action="store_true", help="don't `dvc add` a data file copied in"
    )


def run(args: argparse.Namespace) -> None:
    params_path: Path = args.params
    root = params_path.resolve().parent
    text = files.read_bytes(params_path, "params file").decode("utf-8")
    current = files.read_yaml(params_path, "params file")
    data = _read(args.data)
    # Imported once the inputs are read (see mlops.cli): pandas, scikit-learn, pandera.
    from mlops.data.contract import contract_document, duplicate_columns, infer_contract
    from mlops.data.identifiers import find_groups, find_ids
    from mlops.data.ingestion import ingest, unit_columns, unlabelled
    from mlops.data.quality import duplicate_rows
    from mlops.onboarding import settings
    from mlops.onboarding.profile import find_target
    from mlops.onboarding.sniff import sniff
    from mlops.tasks.task import get_task

    layout = sniff(str(args.data), data, args.target)
    source, copy_to = _source(args.data, data, root)
    frame = tables.read_source(_reading_config(layout, args.target), args.data)
    column = find_target(list(frame.columns), args.target)
    twice = duplicate_columns(list(frame.columns))
    if twice:
        raise UsageError(
            f"{args.data}: columns named alike once normalised: {', '.join(twice)}; "
            "rename them in the file"
        )
    layout, frame, profile = _target(layout, frame, column, args)
    values = settings.changes(layout, source, profile)
    params = parse_params(yaml.safe_load(settings.edit_params(text, values)), str(params_path))
    rare = _rare(profile, params)
    raw = ingest(frame, params.data)
    empty = _empty(raw, params.data.target)
    # Personal data and suspected target leaks would stop validate: left out of the
    # features until a person reviews them (the review list says so), so the first run
    # reaches a verdict.
    personal = _personal(raw.drop(columns=empty), params)
    ids = find_ids(raw.drop(columns=empty), params.data.target)
    leaks, every = _leaks(raw, params, exclude={*ids, *personal, *empty}, rare=rare)
    values |= {
        "validate.privacy.drop": list(personal),
        "data.drop": [*empty, *([] if every else leaks)],
    }
    raw = raw.drop(columns=values["data.drop"])
    new_text = settings.edit_params(text, values)
    params = parse_params(yaml.safe_load(new_text), source=str(params_path))
    groups = find_groups(raw, params.data.target, list(ids))
    schema = infer_contract(
        raw,
        params.data.target,
        params.validate_.quality.max_categories,
        get_task(profile.task),
        ids,
    )
    contract = yaml.safe_dump(contract_document(schema), sort_keys=False, allow_unicode=True)
    schema_text = (_SCHEMA_HEADER.format(source=source) + contract).encode("utf-8")
    schema_path = root / PATHS.schema
    if not args.force:
        _refuse_local_edits(
            root, params_path, current, values, schema=schema_path, schema_text=schema_text
        )
    features = [c for c in raw.columns if c not in {params.data.target, *ids}]

    if copy_to is not None:
        files.write_bytes(copy_to, data)
    files.write_bytes(schema_path, schema_text)
    files.write_text(params_path, new_text)
    tracked = _track(root, source, enabled=not args.no_dvc)

    print(
        f"mlops init: {source}: {len(raw)} rows, {len(features)} features\n"
        f"wrote {params_path} ({', '.join(_sections(values))}) and {PATHS.schema}"
    )
    review = settings.review(
        profile,
        layout,
        values,
        features=features,
        ids=ids,
        groups=groups,
        units=unit_columns(frame.drop(columns=[column]), params.data.decimal),
        personal=personal,
        empty=empty,
        leaks=leaks,
        leaks_kept=every,
        unlabelled=unlabelled(frame, params.data),
        rare=rare,
        duplicates=(duplicate_rows(raw, features, params.data.target)["repeated"], len(raw)),
    )
    print("\n".join(["review:", *(f"  - {line}" for line in [*review, tracked])]))
    print("then: make repro")


def _rare(profile: TargetProfile, params: Params) -> dict[str, int]:
    """The classes split will leave out as too rare (multiclass, split.rare_classes:
    drop), and their rows; UsageError naming them where they can't be left out (a
    binary class, fail, or fewer than three classes left)."""
    from mlops.data.splitting import min_class_rows, rare_classes
    from mlops.onboarding.profile import require_rows

    min_rows = min_class_rows(params)
    if profile.task != "multiclass" or params.split.rare_classes == "fail":
        require_rows(profile.name, profile.counts, min_rows)
        return {}
    rare = rare_classes(profile.counts, min_rows, profile.name)
    rows, left_out = sum(profile.counts.values()), sum(rare.values())
    if 2 * left_out > rows:
        raise UsageError(
            f"target column {profile.name!r}: {len(rare)} of its {len(profile.counts)} classes "
            f"are seen fewer than {min_rows} times, and leaving them out would leave out "
            f"{left_out} of {rows} rows: is it a number (--task regression), a text or id "
            "column (another --target), or classes to merge?"
        )
    return rare


def _personal(raw: pd.DataFrame, params: Params) -> dict[str, tuple[str, ...]]:
    """The columns holding personal data (column -> kinds), as validate finds them."""
    from mlops.data.privacy import scan

    found = scan(raw, params.validate_.privacy, params.seed)
    return {f.column: tuple(f.kinds) for f in found if f.column != params.data.target}


def _leaks(
    raw: pd.DataFrame, params: Params, exclude: set[str], rare: Mapping[str, int]
) -> tuple[dict[str, float], bool]:
    """The columns validate's leakage check will stop on (column -> skill alone), measured
    as validate measures them: on the training split that split will draw (without the
    ``rare`` classes it leaves out), held out as validate holds it out, so that a column
    near validate.leakage.max_skill is told the same way by both; none when the file is
    too small to split or hold rows out (split or validate says so).
    And whether they are every feature: then the target is a function of the data, and
    leaving them out would leave no model to fit, so they stay for a person to judge."""
    import pandas as pd

    from mlops.data import importance, leakage
    from mlops.data.splitting import split
    from mlops.tasks.task import get_task

    config, target = params.validate_.leakage, params.data.target
    if not config.enabled:
        return {}, False
    task = get_task(params.data.task)
    kept = raw[~raw[target].astype(str).isin(list(rare))].reset_index(drop=True)
    try:
        train, _ = split(kept, target, params.split.test_size, params.seed, params.data.task)
        fit, held_out = importance.holdout(
            train, target, params.validate_.importance, seed=params.seed, task=task
        )
    except UsageError:
        return {}, False
    candidates = [c for c in raw.columns if c != target and c not in exclude]
    found = leakage.measure(
        pd.concat([fit, held_out], ignore_index=True), candidates, target, config,
        task=task, seed=params.seed,
    )  # fmt: skip
    leaks = {name: found.skills[name] for name in found.suspected}
    return leaks, bool(leaks) and len(leaks) == len(candidates)


def _empty(raw: pd.DataFrame, target: str) -> list[str]:
    """The columns with no value in any row. One carries nothing, and the contract
    refuses one: init lists them in data.drop (left out as the source is read), so the
    first run reaches a verdict."""
    return [str(c) for c in raw.columns if c != target and raw[c].isna().all()]


_SCHEMA_HEADER = """\
# The data contract, in pandera's YAML format: reviewed by a person, kept in git.
# Drafted by `mlops init` from {source}.
# Ranges and categories are what that file held: review each one (widen ranges to
# what the domain allows) before committing. Names are snake_case, as after ingest.
"""


def _target(
    layout: Layout, frame: pd.DataFrame, column: object, args: argparse.Namespace
) -> tuple[Layout, pd.DataFrame, TargetProfile]:
    """The target's profile (``_profile``), once a target of numbers holding a few words
    (a "Total" row; profile.stray_words) has them read as missing: their rows are
    unlabelled, and the words go in data.na_values and the review's line of markers."""
    from mlops.data.ingestion import normalise_name
    from mlops.onboarding.profile import stray_words

    task = None if args.task == "auto" else args.task
    words = stray_words(frame[column], layout.decimal)
    if words:
        marked = dict(layout.marked or {})
        marked[str(column)] = (*marked.get(str(column), ()), *words)
        found = (*layout.na_values, *(w for w in words if w not in layout.na_values))
        layout = replace(layout, na_values=found, marked=marked)
        frame = tables.marked_missing(frame, words)  # as ingest will read data.na_values
    name = normalise_name(str(column))
    return layout, frame, _profile(frame[column], name, task, args.positive, layout.decimal)


def _profile(
    values: pd.Series,
    name: str,
    task: TaskName | None,
    positive: str | None,
    decimal: DecimalMark,
) -> TargetProfile:
    """The target's profile; a binary target's positive class that can't be told is asked
    for at a terminal, and in a script the one-line error names --positive. Numbers that
    pandas left as text ("5 914,00", "$1,234.50") are a regression's target, as ingest
    reads them."""
    from pandas.api.types import is_numeric_dtype

    from mlops.data.ingestion import type_columns
    from mlops.onboarding.profile import PositiveUnknown, profile_target

    if task in (None, "regression") and not is_numeric_dtype(values):
        # Typed as ingest types a regression's target, so that the two cannot disagree.
        numbers = type_columns(values.to_frame(), decimal).iloc[:, 0]
        if is_numeric_dtype(numbers) and numbers.nunique() > 2:
            read = profile_target(numbers, name, task, positive)
            if read.task == "regression":
                return read
    try:
        return profile_target(values, name, task, positive)
    except PositiveUnknown as exc:
        answer = _ask_positive(name, exc.classes)
        if answer is None:
            raise
        return profile_target(values, name, task, answer)


def _ask_positive(name: str, classes: tuple[str, str]) -> str | None:
    """The positive class as the person at the terminal names it; None without one."""
    if not sys.stdin.isatty():
        return None
    first, second = classes
    try:
        return input(f"target {name!r}: which class means 1, {first!r} or {second!r}? ").strip()
    except EOFError:
        return None


def _read(path: Path) -> bytes:
    try:
        return files.read_bytes(path, "data file")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the data file ({exc.strerror})") from None


def _source(path: Path, data: bytes, root: Path) -> tuple[str, Path | None]:
    """data.source for ``path`` (relative to the project), and where to copy it first
    when it lies outside the project (None: it is inside already)."""
    resolved = path.resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix(), None
    target = root / _EXTERNAL / path.name
    if target.exists() and (not target.is_file() or target.read_bytes() != data):
        raise UsageError(
            f"{_EXTERNAL / path.name} exists and differs from {path}: rename one of them "
            "(init never overwrites a data file)"
        )
    return (_EXTERNAL / path.name).as_posix(), None if target.exists() else target


def _reading_config(layout: Layout, target: str) -> DataConfig:
    """How to read the file: the sniffed layout (task and labels do not matter yet)."""
    return DataConfig(
        source="-",
        format=layout.format,
        header=layout.header,
        columns=layout.columns,
        separator=layout.separator,
        decimal=layout.decimal,
        thousands=layout.thousands,
        na_values=layout.na_values,
        comment=layout.comment,
        target=target,
        task="regression",
        positive_class=None,
        negative_class=None,
        classes=None,
        extra_data="-",
    )


def _refuse_local_edits(
    root: Path,
    params_path: Path,
    current: Any,
    values: dict[str, Any],
    *,
    schema: Path,
    schema_text: bytes,
) -> None:
    """UsageError naming the keys (and data/schema.yaml) init would change while they hold
    uncommitted edits (init's own, from an earlier run, are no loss); nothing to compare
    outside git or before a first commit."""
    from mlops.onboarding.settings import edited_keys

    committed_params = git.file_at("HEAD", params_path.resolve().relative_to(root), cwd=root)
    lost: list[str] = []
    if committed_params is not None:
        lost = edited_keys(yaml.safe_load(committed_params), current, list(values), values)
    committed_schema = git.file_at("HEAD", schema.relative_to(root), cwd=root)
    current_schema = files.read_optional(schema)
    if committed_schema not in (None, current_schema) and current_schema != schema_text:
        lost.append(str(schema.relative_to(root)))
    if lost:
        raise UsageError(
            f"{params_path} has uncommitted edits init would overwrite: {', '.join(lost)}; "
            "commit or stash them, or pass --force"
        )


def _track(root: Path, source: str, *, enabled: bool) -> str:
    """`dvc add` the copied data file when the project is a DVC repository; the line that
    says how the data is kept (or how to keep it) under DVC rather than git."""
    # The commands said with the path quoted for a shell: "Olive Oils (2024).csv".
    path, tracked = shlex.quote(source), shlex.quote(f"{source}.dvc")
    ignore = shlex.quote(f"{Path(source).parent}/.gitignore")
    how = f"dvc add {path} && git add {tracked} {ignore}"
    if (root / f"{source}.dvc").is_file():
        return f"{source} is tracked by DVC already ({source}.dvc)"
    if _in_git(root, source):
        return f"{source} is in git: to keep it under DVC instead, git rm --cached {path} && {how}"
    if not enabled or not (root / ".dvc").is_dir():
        return f"keep the data under DVC, not git: {how}"
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    started = time.monotonic()
    try:
        with Repo(str(root)) as repo:
            repo.scm_context.quiet = True  # its advice (git add ...) is said below, once
            repo.add(source)
    except DvcException as exc:
        print(f"mlops init: dvc add {source} failed ({exc}); run it yourself", file=sys.stderr)
        return f"keep the data under DVC, not git: {how}"
    took = time.monotonic() - started
    return (
        f"{source} is tracked by DVC (dvc add, {took:.1f} s): "
        f"git add {tracked} {ignore}, then dvc push"
    )


def _in_git(root: Path, source: str) -> bool:
    try:
        git.call("ls-files", "--error-unmatch", "--", source, cwd=root)
    except UsageError:
        return False
    return True


def _sections(values: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(key.split(".")[0] for key in values))
