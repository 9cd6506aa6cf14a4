"""Start-up stays cheap (issue #2): choosing a command and importing its stage module
imports none of the slow libraries, and a bad params file is reported before any of
them is imported (see the docstring of src/mlops/cli.py).

Each check runs in a fresh interpreter: this test process has imported them already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from mlops.cli import command_names
from tests.conftest import ROOT

# Each costs from a few tenths of a second (matplotlib) to over a second (scikit-learn).
HEAVY = ("sklearn", "optuna", "scipy", "matplotlib")
PIPELINE = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
# The fewest arguments each command parses with.
ARGUMENTS = {
    "init": ["--data", "data.csv", "--target", "y"],
    "schema": ["infer", "--input", "data.csv"],
    "predict": ["--input", "in.csv", "--output", "out.csv"],
}


def _in_fresh_python(code: str) -> dict[str, list[str]]:
    """Run ``code``, which prints a JSON object, in a new interpreter; that object."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


_LOADED = f"sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))"


def test_choosing_a_command_imports_no_heavy_library() -> None:
    commands = {name: ARGUMENTS.get(name, []) for name in command_names()}
    code = f"""
import importlib, json, sys
import mlops.cli as cli
loaded = {{}}
for name, extra in {commands!r}.items():
    args = cli.build_parser(name).parse_args([name, *extra])
    importlib.import_module("mlops.stages." + args.command)
    loaded[name] = {_LOADED}  # cumulative: the first command listing one imported it
print(json.dumps(loaded))
"""
    loaded = _in_fresh_python(code)
    assert set(loaded) == set(command_names())
    assert {name: libs for name, libs in loaded.items() if libs} == {}


def test_a_bad_params_file_fails_before_any_heavy_import(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text((ROOT / "params.yaml").read_text() + "\nnot_a_section: 1\n")
    code = f"""
import contextlib, io, json, sys
from mlops.cli import main
loaded = {{}}
for stage in {PIPELINE!r}:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["--params", {str(bad)!r}, stage])
    loaded[stage] = [str(code), err.getvalue().strip(), *{_LOADED}]
print(json.dumps(loaded))
"""
    loaded = _in_fresh_python(code)
    for stage in PIPELINE:
        error = f"mlops {stage}: error: {bad}: unknown key not_a_section"
        assert loaded[stage] == ["2", error], stage


def test_a_stage_imports_no_other_command() -> None:
    # Help lines and options live with each command, so running one command (a
    # pipeline stage) loads no other command's module: editing one reruns no other stage.
    code = """
import json, sys
from mlops.cli import build_parser
build_parser("ingest").parse_args(["ingest"])
print(json.dumps({"loaded": sorted(m for m in sys.modules if m.startswith("mlops.stages."))}))
"""
    assert _in_fresh_python(code) == {"loaded": ["mlops.stages.ingest"]}


def test_help_lists_every_command_with_its_own_summary() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "--help"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for name in command_names():
        assert name in done.stdout
    assert "draft the data contract from a data file" in done.stdout
