"""params.yaml is read strictly and its errors stay short (issue #16): a key given twice is
refused with its line, a misspelt key is named with the key it probably meant, and a
huge bad value is quoted cut to a prefix with its size."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.cli import main
from mlops.config import parse_params
from mlops.errors import UsageError, shorten
from mlops.io import files
from tests.conftest import ROOT

PARAMS = (ROOT / "params.yaml").read_text()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PARAMS)
    return loaded


def _line_of(text: str, start: str, after: int = 0) -> int:
    """The 1-based number of the first line from line ``after`` on that starts with ``start``."""
    lines = text.splitlines()
    return next(i + 1 for i in range(after, len(lines)) if lines[i].startswith(start))


def _load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        files.load_params(path)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(f"{path}: ")


# --- a key given twice --------------------------------------------------------------


def test_a_duplicate_top_level_key_is_refused_with_its_line(tmp_path: Path) -> None:
    text = PARAMS + "seed: 7\n"
    first = _line_of(PARAMS, "seed:")
    second = len(text.splitlines())
    assert _load_error(tmp_path, text) == (
        f"duplicate key seed (line {second}; first on line {first})"
    )


def test_a_duplicate_nested_key_is_refused_with_its_path_and_line(tmp_path: Path) -> None:
    split = _line_of(PARAMS, "split:")
    first = _line_of(PARAMS, "  test_size:", split)
    lines = PARAMS.splitlines()
    lines.insert(first, "  test_size: 0.5")
    assert _load_error(tmp_path, "\n".join(lines) + "\n") == (
        f"duplicate key split.test_size (line {first + 1}; first on line {first})"
    )


def test_a_duplicate_key_deep_in_a_list_is_refused(tmp_path: Path) -> None:
    text = "a:\n  b:\n    - x: 1\n    - y: 1\n      z: 2\n      y: 3\n"
    path = tmp_path / "any.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        files.read_yaml(path, "data contract")
    assert str(caught.value) == f"{path}: duplicate key a.b[1].y (line 6; first on line 4)"


def test_a_merge_key_override_is_not_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "any.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  x: 3\n")
    assert files.read_yaml(path) == {"base": {"x": 1, "y": 2}, "m": {"x": 3, "y": 2}}
    path.write_text("m:\n  <<: {x: 1}\n  x: 3\n  x: 4\n")
    with pytest.raises(UsageError, match=r"duplicate key m.x \(line 4; first on line 3\)"):
        files.read_yaml(path)


def test_a_duplicate_key_fails_the_command_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS + "split:\n  test_size: 0.5\n")
    assert main(["--params", str(path), "split"]) == 2
    line = len(path.read_text().splitlines()) - 1
    first = _line_of(PARAMS, "split:")
    assert capsys.readouterr().err == (
        f"mlops split: error: {path}: duplicate key split (line {line}; first on line {first})\n"
    )


# --- a misspelt key -----------------------------------------------------------------


def _parse_error(document: dict[str, Any]) -> str:
    with pytest.raises(UsageError) as caught:
        parse_params(document)
    return str(caught.value)


def _renamed(document: dict[str, Any], path: str, new: str) -> dict[str, Any]:
    """``document`` with the key at dotted ``path`` renamed to ``new``."""
    changed = copy.deepcopy(document)
    *parents, old = path.split(".")
    section = changed
    for key in parents:
        section = section[key]
    section[new] = section.pop(old)
    return changed


@pytest.mark.parametrize(
    ("path", "typo", "expected"),
    [
        ("split.test_size", "tset_size", "unknown key split.tset_size (did you mean test_size?)"),
        ("split", "spilt", "unknown key spilt (did you mean split?)"),
        (
            "validate.quality.max_categories",
            "max_categorys",
            "unknown key validate.quality.max_categorys (did you mean max_categories?)",
        ),
        (
            "tune.pruner.startup_trials",
            "startup_trails",
            "unknown key tune.pruner.startup_trails (did you mean startup_trials?)",
        ),
        (
            "tune.space.random_forest.n_estimators.high",
            "hihg",
            "unknown key tune.space.random_forest.n_estimators.hihg (did you mean high?)",
        ),
    ],
)
def test_a_misspelt_key_is_named_with_the_key_it_meant(
    document: dict[str, Any], path: str, typo: str, expected: str
) -> None:
    assert _parse_error(_renamed(document, path, typo)) == f"params.yaml: {expected}"


def test_the_suggestion_comes_before_another_missing_key(document: dict[str, Any]) -> None:
    changed = _renamed(document, "tune.n_trials", "n_trails")
    del changed["tune"]["cv_folds"]  # reported before n_trials today, in field order
    assert _parse_error(changed) == (
        "params.yaml: unknown key tune.n_trails (did you mean n_trials?)"
    )


# --- long values --------------------------------------------------------------------


def test_a_huge_bad_value_is_quoted_short(document: dict[str, Any]) -> None:
    changed = copy.deepcopy(document)
    changed["split"]["test_size"] = "a" * 5_000_000
    message = _parse_error(changed)
    assert message.startswith("params.yaml: split.test_size: input should be a valid number")
    assert message.endswith("...' (5,000,000 characters))")
    assert len(message) < 200


def test_a_huge_list_in_a_section_check_is_quoted_short(document: dict[str, Any]) -> None:
    changed = copy.deepcopy(document)
    changed["evaluate"]["slices"]["bands"]["age"] = list(range(1_000_000, 0, -1))
    message = _parse_error(changed)
    assert message.startswith(
        "params.yaml: evaluate.slices: bands.age: edges must increase strictly, "
        "got [1000000.0, 999999.0, "
    )
    assert "... (1,000,000 items)" in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "'short'"),
        (12.5, "12.5"),
        ("a" * 5_000_000, "'" + "a" * 54 + "...' (5,000,000 characters)"),
        (b"b" * 100, "b'" + "b" * 53 + "...' (100 bytes)"),
        (list(range(1000)), repr(list(range(1000)))[:55] + "... (1,000 items)"),
        ("line\nbreak" * 20, repr("line\nbreak" * 20)[:55] + "...' (200 characters)"),
    ],
)
def test_shorten(value: object, expected: str) -> None:
    assert shorten(value) == expected


def test_shorten_keeps_to_its_limit() -> None:
    assert shorten("x" * 30, limit=10) == "'xxxx...' (30 characters)"
    assert shorten("x" * 8, limit=10) == "'xxxxxxxx'"


def test_the_command_line_prints_any_error_as_one_short_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlops.stages.split

    def fail(_: object) -> None:
        raise UsageError("first line\n  second line " + "z" * 10_000)

    monkeypatch.setattr(mlops.stages.split, "run", fail)
    assert main(["split"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlops split: error: first line second line zzz")
    assert err.count("\n") == 1
    assert len(err) <= 530
