"""bench/dvc_phases.py times the phases it names, once per call DVC really makes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import ROOT, _dvc_init, run

DVC_YAML = """\
stages:
  first:
    cmd: cp ${source} mid.txt
    deps:
      - ${source}
    params: [source]
    outs: [mid.txt]
  second:
    cmd: cp mid.txt out.txt
    deps: [mid.txt, extra.txt]
    params: [copies]
    outs: [out.txt]
"""


def test_a_no_op_repro_is_broken_down_by_the_calls_dvc_makes(tmp_path: Path) -> None:
    run(["git", "init", "-q"], tmp_path)
    _dvc_init(tmp_path)
    (tmp_path / "params.yaml").write_text("source: in.txt\ncopies: 1\n")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    for name in ("in.txt", "extra.txt"):
        (tmp_path / name).write_text(f"{name}\n")
    run(["dvc", "repro"], tmp_path)
    lock = (tmp_path / "dvc.lock").read_bytes()

    out = run([sys.executable, str(ROOT / "bench" / "dvc_phases.py")], tmp_path).stdout
    phases = {name: (ms, calls) for name, (ms, calls) in json.loads(out).items()}

    assert (tmp_path / "dvc.lock").read_bytes() == lock  # a no-op: nothing reran
    calls = {name: count for name, (_, count) in phases.items()}
    # dvc.yaml and dvc.lock are loaded twice (the targets, then the whole index);
    # params.yaml is read once per stage that declares params.
    assert calls["dvc.yaml read + schema"] == 2
    assert calls["dvc.lock read + schema"] == 2
    assert calls["stage definitions resolved (${...})"] == 4
    assert calls["params.yaml read per stage"] == 2
    # Built twice: 3 file deps, 2 params deps, 2 outs; checked once: the files.
    assert calls["deps and outs built"] == 2 * (3 + 2 + 2)
    assert calls["file deps and outs checked"] == 3 + 2
    total, other = phases["dvc repro"][0], phases["other"][0]
    timed = sum(ms for name, (ms, _) in phases.items() if name not in ("dvc repro", "other"))
    assert 0 < timed < total
    assert abs(other - (total - timed)) < 0.5  # every phase's time, rounded, and the rest
