"""What a target column asks for: the task, its classes, which class is positive, and
how rare the rarer class of a binary target is.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops.data.contract import duplicate_columns
from mlops.data.ingestion import normalise_name, type_columns
from mlops.errors import UsageError, clip, shorten
from mlops.tasks.metrics import TaskName

if TYPE_CHECKING:
    from mlops.config import DecimalMark

# A numeric target with more distinct values than this is a quantity to predict
# (regression), with fewer a code for classes (the Binary task's hint says the same).
_MAX_CODED_CLASSES = 20
# Pairs whose meaning is plain: (negative, positive), compared in lower case.
WELL_KNOWN_PAIRS = (
    ("0", "1"),
    ("-1", "1"),
    ("no", "yes"),
    ("n", "y"),
    ("false", "true"),
    ("f", "t"),
    ("negative", "positive"),
    ("neg", "pos"),
    # A finding, as medical and quality data record one (R's kyphosis, MASS's biopsy).
    ("absent", "present"),
    ("normal", "abnormal"),
    ("benign", "malignant"),
    # The event a model is wanted for: a loan gone bad (credit scoring), a bad part.
    ("good", "bad"),
)
# A label and the same label negated ("Not remote"/"Remote", "non-smoker"/"smoker",
# "no_default"/"default"): the one not negated is the event, the positive class.
_NEGATION = re.compile(r"(?:not|non|no)[\s_-]*(?P<rest>.+)")


def _negated(first: str, second: str) -> tuple[str, str] | None:
    """(negative, positive) of two lower-case labels when one negates the other."""
    for negative, positive in ((first, second), (second, first)):
        match = _NEGATION.fullmatch(negative)
        if match and match["rest"] == positive:
            return negative, positive
    return None


# A binary target whose rarer class is below this share is imbalanced: init's review
# gives the share, beside which accuracy reads (always answering the majority class
# scores 1 - share).
IMBALANCED_SHARE = 0.2


# A target of numbers may hold a few words (text without a digit): a spreadsheet's
# "Total" row, "n/a", "unknown". Up to this share of its values, they mark a missing value.
STRAY_SHARE = 0.01


def stray_words(values: pd.Series, decimal: DecimalMark = ".") -> tuple[str, ...]:
    """The words that stop a target ``values`` reading as numbers: text without a digit,
    at most STRAY_SHARE of the values present, the rest numbers as ingest reads them
    (type_columns); () when there are none or it is no such target."""
    if pd.api.types.is_numeric_dtype(values):
        return ()
    text = values.astype("str").str.strip().where(values.notna())
    words = text.notna() & (text != "") & ~text.str.contains(r"\d", na=False)
    if not words.any() or words.sum() > STRAY_SHARE * text.notna().sum():
        return ()
    rest = type_columns(text.where(~words).to_frame(), decimal).iloc[:, 0]
    return tuple(sorted(text[words].unique())) if pd.api.types.is_numeric_dtype(rest) else ()


class PositiveUnknown(UsageError):
    """A binary target's positive class can't be told from its labels (ask, or --positive)."""

    def __init__(self, message: str, classes: tuple[str, str]) -> None:
        super().__init__(message)
        self.classes = classes


@dataclass(frozen=True)
class TargetProfile:
    """The target as the task sees it."""

    name: str  # normalised, as params.yaml data.target names it
    task: TaskName
    # Labels as text with their row counts, most frequent first (regression: empty).
    counts: dict[str, int]
    positive: str | None = None
    negative: str | None = None
    why_positive: str = ""
    # A numeric target's standard deviation: the scale of errors in its unit.
    spread: float | None = None
    # Why the task was inferred, where it is not plain (a count is a regression's).
    why_task: str = ""

    @property
    def minority_share(self) -> float | None:
        """The rarer class's share of the rows (binary only)."""
        if self.task != "binary":
            return None
        return min(self.counts.values()) / sum(self.counts.values())

    @property
    def imbalanced(self) -> bool:
        share = self.minority_share
        return share is not None and share < IMBALANCED_SHARE


def find_target(columns: Sequence[object], target: str) -> object:
    """The column of ``columns`` (as the file names them) that ``target`` names, once
    normalised; UsageError for none (with the closest names) or two."""
    wanted = normalise_name(target)
    matches = [c for c in columns if normalise_name(c) == wanted]
    if wanted in duplicate_columns(list(columns)) or len(matches) > 1:
        raise UsageError(
            f"target {target!r} is ambiguous: columns {shorten([str(c) for c in matches])} "
            "all read as " + repr(wanted) + "; rename one of them in the file"
        )
    if not matches:
        names = [normalise_name(c) for c in columns]
        close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else f"columns: {shorten(names)}"
        raise UsageError(f"target column {target!r} not in the data ({hint})")
    return matches[0]


def label_text(value: object) -> str:
    """A label as text, the way the tasks compare labels: 1, 1.0 and " 1" are "1"."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def profile_target(
    values: pd.Series,
    name: str,
    task: TaskName | None = None,
    positive: str | None = None,
    min_rows: int = 2,
) -> TargetProfile:
    """The task ``values`` ask for (or ``task`` as told), its classes and positive class.

    UsageError when the target holds one value, a binary target's class has fewer than
    ``min_rows`` rows (a split needs 2, and see ``data.splitting.min_class_rows``), or its
    positive class can't be told and ``positive`` is not given.
    """
    labels = values.dropna().map(label_text)
    counts = labels.value_counts()
    if counts.size < 2:
        only = f"only {clip(counts.index[0])!r}" if counts.size else "no values"
        raise UsageError(f"target column {name!r} holds {only}: nothing to predict")
    chosen, why = (task, "") if task else _infer_task(labels, counts.size)
    if chosen == "regression":
        if positive is not None:
            raise UsageError("--positive is for a binary target; this one is regression")
        spread = pd.to_numeric(labels, errors="coerce").std()
        spread = None if pd.isna(spread) else float(spread)
        return TargetProfile(name, chosen, {}, spread=spread, why_task=why)
    found = {str(label): int(count) for label, count in counts.items()}
    if counts.size == 2:  # a multiclass task can do without a rare class: init's call
        require_rows(name, found, min_rows)
    if (chosen == "binary") != (counts.size == 2):
        raise UsageError(
            f"--task {chosen}: target column {name!r} has {counts.size} classes "
            f"({shorten([clip(c) for c in list(found)[:5]])}); "
            f"pass --task {'multiclass' if counts.size > 2 else 'binary'} or --task auto"
        )
    if chosen != "binary":
        if positive is not None:
            raise UsageError(
                f"--positive is for a binary target; {name!r} has {counts.size} classes"
            )
        return TargetProfile(name, chosen, found)
    negative_label, positive_label, why = _positive(name, list(found), positive)
    return TargetProfile(name, chosen, found, positive_label, negative_label, why)


def require_rows(name: str, counts: dict[str, int], min_rows: int) -> None:
    """UsageError naming the classes of fewer than ``min_rows`` rows."""
    rare = {label: count for label, count in counts.items() if count < min_rows}
    if rare:
        fewest = min(rare.values())
        seen = "once" if fewest == 1 else f"{fewest} times"
        raise UsageError(
            f"target column {name!r}: class(es) {shorten([clip(c) for c in list(rare)[:5]])} "
            f"seen {seen}; each class needs at least {min_rows} rows (to split and "
            "cross-validate): drop or relabel those rows"
        )


def _infer_task(labels: pd.Series, classes: int) -> tuple[TaskName, str]:
    """The task ``labels`` ask for, and why where it is not plain (a count)."""
    if classes == 2:
        return "binary", ""
    numbers = pd.to_numeric(labels, errors="coerce")
    if numbers.notna().all():
        integral = bool((numbers == numbers.round()).all())
        if classes > _MAX_CODED_CLASSES or not integral:
            return "regression", ""
        if is_count(numbers):
            return (
                "regression",
                f"whole numbers 0 to {numbers.max():g}, the larger ones rare: a count",
            )
    return "multiclass", ""


# A count (a patient's visits, a scientist's articles, a region's cases): whole numbers
# from 0 whose larger values are rare. As classes, that tail is classes too rare to split,
# left out with their rows, so the model could never predict a large count.
_COUNT_VALUES = 8  # distinct values at least: fewer (0 to 6) can as well be a code
_COUNT_TAIL = 0.1  # at most this share of the rows above half the largest value


def is_count(numbers: pd.Series) -> bool:
    """Whether whole ``numbers`` (none missing) read as counts: from 0, at least
    ``_COUNT_VALUES`` distinct values, and at most ``_COUNT_TAIL`` of the rows above
    half the largest. Digits 0 to 9 in equal shares, a rating or a code from 1 are not."""
    top = numbers.max()
    return bool(
        numbers.min() == 0
        and numbers.nunique() >= _COUNT_VALUES
        and (numbers > top / 2).mean() <= _COUNT_TAIL
    )


def _positive(name: str, classes: list[str], positive: str | None) -> tuple[str, str, str]:
    """(negative, positive, why) for a binary target's two ``classes``."""
    if positive is not None:
        label = label_text(positive)
        if label not in classes:
            raise UsageError(
                f"--positive {positive!r} is not a class of {name!r}; "
                f"its classes: {shorten(sorted(classes))}"
            )
        return next(c for c in classes if c != label), label, "as told by --positive"
    lower = {c.lower(): c for c in classes}
    known = (pair for pair in WELL_KNOWN_PAIRS if set(pair) == set(lower))
    if (pair := next(known, None) or _negated(*lower)) is not None:
        negative, positive_label = pair
        return (
            lower[negative],
            lower[positive_label],
            f"told from the pair {negative}/{positive_label}",
        )
    first, second = sorted(classes)
    raise PositiveUnknown(
        f"target column {name!r} has two classes, {first!r} and {second!r}, and which one is "
        f"positive can't be told: pass --positive with the one that means 1 "
        f"(e.g. --positive {second!r})",
        (first, second),
    )
