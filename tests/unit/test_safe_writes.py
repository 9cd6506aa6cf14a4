"""Writes go to a regular file only, with the usual permissions (issue #16).

A directory, a symlink, a device or a named pipe given as an output is refused in
one line (exit 2 from the command line) and left as it was; a new file gets mode
0o666 less the umask, an overwritten file keeps its mode.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from mlops.cli import main
from mlops.errors import UsageError
from mlops.io import files
from tests.conftest import ROOT

Writer = Callable[[Path], None]
FRAME = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
WRITERS: dict[str, Writer] = {
    "bytes": lambda path: files.write_bytes(path, b"new"),
    "text": lambda path: files.write_text(path, "new"),
    "json": lambda path: files.write_json(path, {"new": 1}),
    "csv": lambda path: files.write_csv(path, FRAME),
    "parquet": lambda path: files.write_parquet(path, FRAME),
}


def _directory(path: Path) -> None:
    path.mkdir()


def _symlink(path: Path) -> None:
    (path.parent / "real.txt").write_text("old")
    path.symlink_to(path.parent / "real.txt")


def _dangling_symlink(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.txt")


def _named_pipe(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    """A character device like /dev/null (1, 3), made in the test's own folder."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))


TARGETS: dict[str, tuple[Callable[[Path], None], str]] = {
    "directory": (_directory, "is a directory"),
    "symlink": (_symlink, "is a symbolic link"),
    "dangling symlink": (_dangling_symlink, "is a symbolic link"),
    "named pipe": (_named_pipe, "is a named pipe"),
    "device": (_device, "is a character device"),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Each entry of ``folder``: its type and mode bits, and where a symlink points."""
    return {
        p.name: (p.lstat().st_mode, str(p.readlink()) if p.is_symlink() else "")
        for p in folder.iterdir()
    }


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("writer", list(WRITERS))
def test_anything_but_a_regular_file_is_refused_and_left_alone(
    tmp_path: Path, writer: str, target: str
) -> None:
    make, kind = TARGETS[target]
    path = tmp_path / "out"
    make(path)
    before = _snapshot(tmp_path)
    with pytest.raises(UsageError) as caught:
        WRITERS[writer](path)
    assert str(caught.value) == f"{path}: {kind}; expected a regular file path"
    assert _snapshot(tmp_path) == before  # nothing replaced, no temporary file left
    if target == "symlink":
        assert (tmp_path / "real.txt").read_text() == "old"


def test_a_parent_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("old")
    with pytest.raises(UsageError, match=r"file/out.csv: cannot write here, a parent of it is not"):
        files.write_csv(tmp_path / "file" / "out.csv", FRAME)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_new_file_gets_the_mode_open_would_give(
    tmp_path: Path, umask: Callable[[int], None], writer: str, mask: int
) -> None:
    umask(mask)
    WRITERS[writer](tmp_path / "deep" / "out")
    assert stat.S_IMODE((tmp_path / "deep" / "out").stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("mode", [0o640, 0o444, 0o664])
def test_an_overwritten_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "out.json"
    path.write_text("{}")
    path.chmod(mode)
    files.write_json(path, {"new": 1})
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == '{\n  "new": 1\n}\n'


# --- from the command line: every option naming an output file ---------------------

DATA = str(ROOT / "data/external/adult/adult.data.gz")
COMMANDS = {
    "schema --out": ["schema", "infer", "--input", DATA, "--out", "{out}"],
    "predict --output": ["predict", "--input", DATA, "--output", "{out}"],
    "validate --report": ["validate", "--input", DATA, "--report", "{out}"],
    "validate --markdown": ["validate", "--input", DATA, "--markdown", "{out}"],
    "impute --report": ["impute", "--input", DATA, "--report", "{out}"],
}


@pytest.mark.parametrize("target", ["directory", "symlink", "named pipe", "device"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_output_option_refuses_a_bad_target_before_anything_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    target: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    make, kind = TARGETS[target]
    make(tmp_path / "out")
    before = _snapshot(tmp_path)
    argv = [a.format(out="out") for a in COMMANDS[command]]
    assert main(["--params", str(ROOT / "params.yaml"), *argv]) == 2
    name = argv[0]
    assert capsys.readouterr().err == (
        f"mlops {name}: error: out: {kind}; expected a regular file path\n"
    )
    assert _snapshot(tmp_path) == before
