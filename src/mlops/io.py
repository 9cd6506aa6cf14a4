"""The only module that touches disk: tables, JSON, YAML, model files, params, the
tuning study's database, git, DVC and GTO.

Every write goes to a temporary file in the target's folder and is renamed
into place, so a failure never leaves a half-written artefact behind.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops.config import PARAMS_FILE, PATHS, DataConfig, Params, parse_params
from mlops.errors import UsageError, shorten

if TYPE_CHECKING:
    import optuna
    import pandas as pd

_PARQUET_MAGIC = b"PAR1"
_LOCK_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# A tune worker that stops sending heartbeats for GRACE_SECONDS is presumed dead: its
# running trial is failed and queued once more, so no trial is lost.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 30
STORAGE_ATTEMPTS = 3


# --- atomic writes -----------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success only.

    ``path`` must name a regular file or nothing yet (see ``check_output_path``). The
    file gets the mode ``open()`` would give a new file (0o666 less the umask), or
    keeps the mode of the file it replaces. An ``OSError`` becomes one UsageError line.
    """
    check_output_path(path)
    with _os_errors(path):
        mode = _existing_mode(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_temp_file(path)
    try:
        with _os_errors(path):
            yield tmp
            if mode is not None:
                tmp.chmod(mode)
            check_output_path(path)  # again: something may have appeared meanwhile
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output_path(path: Path) -> None:
    """Refuse to write over anything but a regular file: a device, a symlink, a folder..."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise UsageError(
            f"{path}: cannot write here, a parent of it is not a folder "
            "(expected a regular file path)"
        ) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write here ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: is {_file_kind(mode)}; expected a regular file path")


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _existing_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None


def _new_temp_file(path: Path) -> Path:
    """An empty hidden file next to ``path``, created as ``open()`` would (mode 0o666 less
    the umask; ``tempfile.mkstemp`` would give 0o600)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


@contextlib.contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        raise UsageError(f"{path}: cannot write ({detail})") from None


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_csv(path: Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


# --- reads -------------------------------------------------------------------


def _require_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise UsageError(f"{path}: {what} is a directory; expected a file")
    if not path.is_file():
        raise UsageError(f"{path}: {what} not found")


def read_json(path: Path, what: str = "JSON file") -> Any:
    _require_file(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {what} is not valid JSON ({exc})") from None


def read_yaml(path: Path, what: str = "YAML file") -> Any:
    """A YAML file's content; a key given twice in one mapping is an error, not "last wins"."""
    _require_file(path, what)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise UsageError(f"{path}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = str(exc).replace("\n", " ")
        raise UsageError(f"{path}: {what} is not valid YAML ({detail})") from None


class _DuplicateKey(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives a key twice (at any depth).

    A subclass, so PyYAML's own loaders (which DVC uses) are left as they are.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_unique(node, "")
        return super().construct_document(node)

    def _check_unique(self, node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_unique(item, f"{path}[{index}]")
        if not isinstance(node, yaml.MappingNode):
            return
        first_lines: dict[object, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            name = _cut(key) if isinstance(key, str) else shorten(key, 40)
            child = f"{path}.{name}" if path else name
            if key in first_lines:
                first = first_lines[key]
                raise _DuplicateKey(f"duplicate key {child} (line {line}; first on line {first})")
            first_lines[key] = line
            self._check_unique(value_node, child)


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def load_params(path: Path = PARAMS_FILE) -> Params:
    return parse_params(read_yaml(path, "params file"), source=str(path))


def read_parquet(path: Path, what: str = "table") -> pd.DataFrame:
    _require_file(path, what)  # before pandas' import, so a missing input fails fast
    import pandas as pd
    import pyarrow

    try:
        return pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: {what} is not a readable Parquet file ({exc})") from None


def read_csv(path: Path, what: str = "CSV table") -> pd.DataFrame:
    _require_file(path, what)
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: {what} is not a readable CSV file ({detail})") from None


def file_md5(path: Path) -> str:
    """The md5 DVC records for a file in dvc.lock."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- source data -------------------------------------------------------------


def read_source(config: DataConfig, path: Path | None = None) -> pd.DataFrame:
    """Read ``path`` (default: params.yaml data.source) as a CSV or Parquet file as configured."""
    what = "input file" if path else "data source (params.yaml data.source)"
    path = path or Path(config.source)
    _require_file(path, what)
    if path.stat().st_size == 0:
        raise UsageError(f"{path}: data source is empty")
    kind = config.format if config.format != "auto" else _sniff_format(path)
    frame = _read_parquet_source(path) if kind == "parquet" else _read_csv_source(path, config)
    if frame.empty:
        raise UsageError(f"{path}: data source has no data rows")
    return frame


def _sniff_format(path: Path) -> str:
    with path.open("rb") as handle:
        if handle.read(4) == _PARQUET_MAGIC:
            return "parquet"
    return "csv"


def _read_parquet_source(path: Path) -> pd.DataFrame:
    import pandas as pd
    import pyarrow

    try:
        return pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: not a readable Parquet file ({exc})") from None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip-compressed (whatever its name)."""
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise UsageError(f"{path}: cannot decompress gzip data ({exc})") from None


def _read_csv_source(path: Path, config: DataConfig) -> pd.DataFrame:
    text = _csv_text(path, _read_bytes(path))
    if not text.strip():
        raise UsageError(f"{path}: data source is empty")
    names = list(config.columns) if config.columns else None
    return _parse_csv(path, text, config, sep=config.separator, header=config.header, names=names)


def _csv_text(path: Path, data: bytes) -> str:
    if b"\x00" in data[:65536]:
        raise UsageError(f"{path}: not a CSV or Parquet file (binary content)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a CSV or Parquet file (not UTF-8 text)") from None


def _parse_csv(
    path: Path, text: str, config: DataConfig, *, sep: str, header: bool, names: list[str] | None
) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=0 if header else None,
            names=names,
            na_values=list(config.na_values),
            keep_default_na=True,
            comment=config.comment,
            skipinitialspace=True,
            skip_blank_lines=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise UsageError(
            f"{path}: not a CSV file as configured in params.yaml data ({detail})"
        ) from None


# --- batches given with --input ------------------------------------------------

# (header?, column names) from a CSV's first row: ingestion.csv_layout (pure logic; a
# stage passes it in, so that io, which every stage imports, does not import ingestion).
CsvLayout = Callable[[Sequence[str]], tuple[bool, list[str] | None]]
_SEPARATORS = (",", ";", "\t", "|")
_SNIFF_LINES = 50


def read_input(path: Path, config: DataConfig, layout: CsvLayout) -> pd.DataFrame:
    """A file given with ``--input``: Parquet, CSV or gzipped CSV, told apart by content.

    A CSV's separator is sniffed (params.yaml ``data.separator`` on a tie), and
    ``layout`` (``ingestion.csv_layout``) tells from its first row whether that
    row is a header or else which names the columns take.
    """
    _require_file(path, "input file")
    data = _read_bytes(path)
    if not data.strip():
        raise UsageError(f"{path}: input file is empty")
    if data[:4] == _PARQUET_MAGIC:
        frame = _parquet_bytes(path, data)
    else:
        frame = _read_csv_input(path, _csv_text(path, data), config, layout)
    if frame.empty:
        raise UsageError(f"{path}: input file has no data rows")
    return frame


def _parquet_bytes(path: Path, data: bytes) -> pd.DataFrame:
    import pandas as pd
    import pyarrow

    try:
        return pd.read_parquet(io.BytesIO(data))
    except (pyarrow.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: not a readable Parquet file ({exc})") from None


def _read_csv_input(path: Path, text: str, config: DataConfig, layout: CsvLayout) -> pd.DataFrame:
    lines = _data_lines(text, config.comment)
    if not lines:
        raise UsageError(f"{path}: input file has no data rows")
    sep = _sniff_separator(lines, config.separator, config.comment)
    first = _split_line(lines[0], sep)
    header, names = layout(first)
    if names is not None and len(names) != len(first):
        raise UsageError(
            f"{path}: {len(first)} fields in the first row, but params.yaml data.columns "
            f"names {len(names)} (a headerless file needs them all, the target optional)"
        )
    return _parse_csv(path, text, config, sep=sep, header=header, names=names)


def _data_lines(text: str, comment: str | None) -> list[str]:
    """The first lines that hold data, without comments (from ``comment`` to the end of
    the line, as pandas reads them) and blank lines."""
    lines = (line.partition(comment)[0] if comment else line for line in text.splitlines())
    kept = (line for line in lines if line.strip())
    return [line for _, line in zip(range(_SNIFF_LINES), kept, strict=False)]


def _split_line(line: str, sep: str) -> list[str]:
    if len(sep) != 1:
        return [field.strip() for field in line.split(sep)]
    return next(csv.reader([line], delimiter=sep, skipinitialspace=True))


def _sniff_separator(lines: list[str], configured: str, comment: str | None) -> str:
    """Of the separators that split every line into the same number (> 1) of fields, the
    one giving the most fields (the configured one on a tie: "a;b;1,5" is ";"); else
    csv.Sniffer's guess, else the configured one. Never the comment character."""
    if len(configured) != 1:
        return configured  # a regular expression or a multi-character separator: as told
    candidates = [s for s in dict.fromkeys((configured, *_SEPARATORS)) if s != comment]
    fields: dict[str, int] = {}
    for sep in candidates:
        counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and (count := counts.pop()) > 1:
            fields[sep] = count
    if fields:
        return max(fields, key=lambda sep: fields[sep])  # max keeps the first of equals
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(candidates)).delimiter
    except csv.Error:
        return configured


# --- models ------------------------------------------------------------------


def canonical_skops(data: bytes) -> bytes:
    """Rewrite a skops archive so identical models give identical bytes.

    skops names array files after ``id()`` of the objects and stamps each zip
    entry with the current time; both change from run to run. Ids are
    renumbered in order of first appearance and timestamps fixed.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = json.loads(source.read("schema.json"))
        ids: dict[int, int] = {}
        _renumber_ids(schema, ids)
        entries = {"schema.json": json.dumps(schema, indent=2).encode()}
        for name in source.namelist():
            stem, dot, ext = name.partition(".")
            if stem.isdigit():
                entries[f"{_new_id(int(stem), ids)}{dot}{ext}"] = source.read(name)
            elif name != "schema.json":
                entries[name] = source.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(entries):
            target.writestr(
                zipfile.ZipInfo(name, date_time=_ZIP_EPOCH), entries[name], zipfile.ZIP_DEFLATED
            )
    return out.getvalue()


def _new_id(old: int, ids: dict[int, int]) -> int:
    return ids.setdefault(old, len(ids) + 1)


def _renumber_ids(node: Any, ids: dict[int, int]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "__id__" and isinstance(value, int):
                node[key] = _new_id(value, ids)
            elif key == "file" and isinstance(value, str) and value.partition(".")[0].isdigit():
                stem, dot, ext = value.partition(".")
                node[key] = f"{_new_id(int(stem), ids)}{dot}{ext}"
            else:
                _renumber_ids(value, ids)
    elif isinstance(node, list):
        for item in node:
            _renumber_ids(item, ids)


def dump_model(path: Path, model: object) -> None:
    import skops.io as sio

    write_bytes(path, canonical_skops(sio.dumps(model)))


def load_model(path: Path, trusted: Sequence[str]) -> Any:
    """Load a skops model, refusing any type outside the reviewed ``trusted`` list."""
    _require_file(path, "model file")
    return load_model_bytes(path.read_bytes(), trusted, str(path))


def load_model_bytes(data: bytes, trusted: Sequence[str], source: str) -> Any:
    """Load skops bytes, refusing any type outside the reviewed ``trusted`` list."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"{source}: not a skops model file ({exc})") from None
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise UsageError(f"{source}: model file contains untrusted types: {', '.join(refused)}")
    return sio.loads(data, trusted=list(untrusted))


def expected_md5(lock_path: Path, out_path: Path) -> str | None:
    """The md5 that ``lock_path`` (a dvc.lock) records for the output ``out_path``.

    None when there is no lock file or no stage lists that output (a file not
    produced by the pipeline yet); a lock file that is not DVC's YAML is an error.
    """
    if not lock_path.is_file():
        return None
    lock = read_yaml(lock_path, "DVC lock file")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        raise UsageError(f"{lock_path}: not a DVC lock file (no 'stages' mapping)")
    wanted = out_path.as_posix()
    for stage in stages.values():
        for out in stage.get("outs", []) if isinstance(stage, dict) else []:
            if isinstance(out, dict) and out.get("path") == wanted and "md5" in out:
                return str(out["md5"])
    return None


def load_verified_model(path: Path, trusted: Sequence[str], lock_path: Path) -> Any:
    """``load_model``, after checking the file's md5 against what ``lock_path`` records.

    A model file changed outside the pipeline (tampered with, or copied in from
    elsewhere) is refused before skops reads a byte of it, as is any model when
    there is no lock file to check it against.
    """
    _require_file(path, "model file")
    if not lock_path.is_file():
        raise UsageError(
            f"{path}: no {lock_path} to check its md5 against; refusing a model file "
            f"the pipeline has not recorded (build it with `dvc repro`, or restore "
            f"{lock_path} with `git checkout {lock_path.as_posix()}`)"
        )
    expected = expected_md5(lock_path, path)
    if expected is not None and (actual := file_md5(path)) != expected:
        raise UsageError(
            f"{path}: md5 {actual} does not match {expected} recorded in {lock_path}; "
            f"refusing a model file changed outside the pipeline "
            f"(restore it with `dvc checkout {path.as_posix()}` or rebuild it with `dvc repro`)"
        )
    return load_model(path, trusted)


# --- environment -------------------------------------------------------------


def git_revision(cwd: Path | None = None) -> str:
    """The commit checked out, or "unknown" outside a git repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def record_run(stage: str, facts: Mapping[str, Any], folder: Path | None = None) -> None:
    """Write ``stage``'s run record: when it finished, from which checkout, and ``facts``.

    Durations and times differ on every run; recorded here, not in the stage's
    outputs, they leave dvc.lock and the committed reports unchanged by a rerun.
    """
    record = {
        "stage": stage,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        **facts,
    }
    write_json((folder or PATHS.runs_dir) / f"{stage}.json", record)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's bytes and behaviour."""
    import platform
    from importlib import metadata

    packages = ("scikit-learn", "pandas", "numpy", "optuna", "skops", "pyarrow")
    return {"python": platform.python_version()} | {p: metadata.version(p) for p in packages}


# --- files for the registry and serving -----------------------------------------


def read_bytes(path: Path, what: str = "file") -> bytes:
    _require_file(path, what)
    return path.read_bytes()


def bytes_md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """Changes whenever the file is rewritten (atomic writes give a new inode)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def append_text(path: Path, text: str) -> None:
    """Append in one write on an O_APPEND descriptor, so concurrent writers don't interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def list_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def remove_files(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


# --- git ---------------------------------------------------------------------


def _git(*args: str, cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"git {args[0]}: {detail}") from None
    return out.stdout


def git_first_commit_time(text: str, path: Path, cwd: Path | None = None) -> datetime | None:
    """When ``text`` first appeared in ``path``'s committed history (None: never, or no git)."""
    try:
        log = _git("log", "--format=%cI", f"-S{text}", "--", str(path), cwd=cwd)
    except UsageError:
        return None
    times = log.split()
    return datetime.fromisoformat(times[-1]) if times else None


def git_head(cwd: Path | None = None) -> str:
    """The commit checked out; a UsageError outside a git repository or before a commit."""
    return _git("rev-parse", "--verify", "HEAD", cwd=cwd).strip()


def git_file(revision: str, path: Path, cwd: Path | None = None) -> bytes | None:
    """``path`` as committed at ``revision``, or None when it is not there."""
    spec = f"{revision}:{path.as_posix()}"
    proc = subprocess.run(["git", "show", spec], cwd=cwd, capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def parse_yaml_bytes(data: bytes | None) -> Any:
    """A committed JSON or YAML file's content (JSON is YAML); None when absent or unreadable."""
    if data is None:
        return None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError:
        return None


def git_is_committed(path: Path) -> bool:
    """Tracked, and the working tree holds exactly what HEAD has."""
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "--", str(path)], capture_output=True, check=False
    )
    same = subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", str(path)], capture_output=True, check=False
    )
    return tracked.returncode == 0 and same.returncode == 0


def git_commit_file(path: Path, message: str) -> str:
    """Commit ``path`` alone (anything else staged stays staged); the new commit's id."""
    _git("add", "--", str(path))
    _git("commit", "-q", "-m", message, "--only", "--", str(path))
    return git_head()


def git_unstage(path: Path) -> None:
    subprocess.run(["git", "reset", "-q", "--", str(path)], capture_output=True, check=False)


def git_tags(pattern: str) -> set[str]:
    return set(_git("tag", "--list", pattern).split())


def git_delete_tags(names: Sequence[str]) -> None:
    if names:
        _git("tag", "-d", *names)


def git_last_tag_time(patterns: Sequence[str]) -> int | None:
    """The newest creation time (whole seconds) of the tags matching ``patterns``."""
    out = _git(
        "for-each-ref", "--format=%(creatordate:unix)", *[f"refs/tags/{p}" for p in patterns]
    )
    times = [int(t) for t in out.split()]
    return max(times) if times else None


# --- DVC ---------------------------------------------------------------------


def lock_file_problem(data: bytes | None) -> str | None:
    """What makes ``data`` an unusable dvc.lock (None: usable; absent is usable too).

    DVC rewrites dvc.lock in place after each stage, so a kill during that write
    leaves it empty or cut short, and every later `dvc repro` stops on it.
    """
    if data is None:
        return None
    if not data.strip():
        return "it is empty"
    if not data.endswith(b"\n"):  # DVC ends it with a line break; a cut rarely does
        return "it is cut short"
    from dvc.schema import COMPILED_LOCKFILE_SCHEMA

    try:
        document = yaml.safe_load(data)
        COMPILED_LOCKFILE_SCHEMA(document)
    except yaml.YAMLError as exc:
        return f"it is not YAML ({str(exc).splitlines()[0]})"
    except Exception as exc:  # voluptuous's Invalid: the schema DVC itself checks
        return f"it is not a DVC lock file ({shorten(str(exc), 80)})"
    return _cut_hash(document)


def _cut_hash(document: dict[str, Any]) -> str | None:
    """A cut at a line end still parses; a hash cut short does not look like one."""
    for name, stage in document.get("stages", {}).items():
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            if not _LOCK_MD5.fullmatch(str(entry.get("md5", ""))):
                return f"it is cut short (stage {name}: {entry.get('path')} has no full md5)"
    return None


def read_optional(path: Path) -> bytes | None:
    """``path``'s bytes, or None when there is no such file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def dvc_cache_file(md5: str, root: Path = Path()) -> Path:
    """Where the DVC cache keeps the object with this md5 (whether or not it is there)."""
    return Path(_dvc_cache(root, lambda cache: cache.local.oid_to_path(md5)))


def dvc_cache_dir(root: Path = Path()) -> Path:
    """The DVC cache folder (``cache.dir``), to share it with a temporary worktree."""
    return Path(_dvc_cache(root, lambda cache: cache.local_cache_dir))


def _dvc_cache(root: Path, attribute: Any) -> str:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return str(Path(attribute(repo.cache)).resolve())
    except DvcException as exc:
        raise UsageError(f"{root.resolve()}: not a DVC repository ({exc})") from None


def dvc_pull_object(md5: str, root: Path = Path()) -> str | None:
    """Fetch one object from the default DVC remote into the cache; None, or why not."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo

    try:
        with Repo(str(root)) as repo:
            result = repo.cloud.pull([HashInfo("md5", md5)])
    except DvcException as exc:
        return str(exc).strip().splitlines()[0]
    return None if result.transferred else "the DVC remote does not have it"


def dvc_push_object(md5: str, root: Path = Path()) -> str | None:
    """Upload one cache object to the default DVC remote: None, "no remote", or raise.

    One object by its hash, not ``dvc push --all-tags``: that pushes only one
    revision's copy of a path (treeverse/dvc#10617), so older versions would be lost.
    """
    from dvc.config import NoRemoteError
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo

    try:
        with Repo(str(root)) as repo:
            result = repo.cloud.push([HashInfo("md5", md5)])
    except NoRemoteError:
        return "no DVC remote configured"
    except DvcException as exc:
        raise UsageError(f"dvc push of {md5}: {str(exc).strip().splitlines()[0]}") from None
    if result.failed:
        raise UsageError(f"dvc push of {md5}: the upload failed")
    return None


def reproduce_output(
    revision: str, stage: str, output: Path, cache_dir: Path, root: Path = Path()
) -> tuple[str | None, str]:
    """Run ``dvc repro stage`` of ``revision`` in a temporary git worktree that shares the
    DVC cache ``cache_dir``; (md5 of ``output`` or None, one line on what happened).

    The revision's own package (its ``src/``) is put first on PYTHONPATH so the code
    that made the model is the code that remakes it.
    """
    folder = Path(tempfile.mkdtemp(prefix="mlops-reproduce-"))
    tree = folder / "tree"
    try:
        _git("worktree", "add", "--detach", str(tree), revision, cwd=root)
        _dvc("config", "--local", "cache.dir", str(cache_dir), cwd=tree)
        proc = _dvc("repro", stage, cwd=tree, env=_reproduce_env(tree), check=False)
        if proc.returncode != 0:
            lines = (proc.stderr + proc.stdout).strip().splitlines() or ["no output"]
            return None, f"dvc repro {stage} failed: {lines[-1]}"
        if not (tree / output).is_file():
            return None, f"dvc repro {stage} did not produce {output}"
        return file_md5(tree / output), f"reproduced by dvc repro {stage} at {revision[:7]}"
    except UsageError as exc:
        return None, str(exc)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)],
            cwd=root,
            capture_output=True,
            check=False,
        )
        subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _reproduce_env(tree: Path) -> dict[str, str]:
    import sys

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if (tree / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(tree / "src"), env.get("PYTHONPATH", "")) if p
        )
    return env


def _dvc(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"dvc {args[0]}: {detail}")
    return proc


# --- the tuning study's database -------------------------------------------------


def open_study_storage(url: str | None, default: Path, source: Path) -> optuna.storages.RDBStorage:
    """The Optuna study database named by ``tune.storage`` (``url``), or the SQLite file
    ``default`` when it names none; one line naming ``tune.storage`` in ``source`` (the
    params file) if it cannot be opened."""
    import sqlalchemy

    if url is None:
        default.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{default}"
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the locked driver is psycopg2.
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return _rdb_storage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            # Workers starting together on an empty database race to create its
            # tables; the loser finds them on the next attempt.
            if attempt == STORAGE_ATTEMPTS - 1:
                raise _storage_error(url, exc, source) from None
            time.sleep(1.0 + attempt)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            raise _storage_error(url, exc, source) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        # Heartbeats are marked experimental, yet they are how a dead worker's trial
        # is noticed and run again.
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=_engine_kwargs(url),
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )


def _storage_error(url: str, exc: Exception, source: Path) -> UsageError:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UsageError(f"{source}: tune.storage: cannot open {_hide_password(url)} ({detail})")


def _engine_kwargs(url: str) -> dict[str, object]:
    # Wait for a lock instead of failing when local workers share one SQLite file,
    # and give up on an unreachable server in seconds rather than minutes.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def _hide_password(url: str) -> str:
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return repr(url)


# --- GTO (the model registry on git tags) ------------------------------------------


def gto_versions(artifact: str, root: Path = Path()) -> list[dict[str, Any]]:
    """Registered versions of ``artifact``: version, commit, active, stages (assigned now)."""
    from gto.registry import GitRegistry

    with _gto_errors(), GitRegistry.from_url(str(root)) as registry:
        state = registry.get_state()
    found = state.artifacts.get(artifact)
    if found is None:
        return []
    return [
        {
            "version": v.version,
            "commit": v.commit_hexsha,
            "active": bool(v.is_active),
            "stages": sorted(name for name, s in v.stages.items() if s.is_active),
            "created_at": v.created_at.isoformat(timespec="seconds"),
        }
        for v in found.versions
        if v.is_registered and not v.discovered
    ]


def gto_register(artifact: str, version: str, revision: str, message: str) -> None:
    from gto import api

    with _gto_errors():
        api.register(".", artifact, revision, version=version, message=message)


def gto_assign(artifact: str, version: str, stage: str, message: str) -> None:
    from gto import api

    with _gto_errors():
        api.assign(".", artifact, stage, version=version, message=message)


def gto_unassign(artifact: str, version: str, stage: str, message: str) -> None:
    from gto import api

    with _gto_errors():
        api.unassign(".", artifact, version=version, stage=stage, message=message)


def gto_deprecate(artifact: str, version: str, message: str) -> None:
    """``gto deprecate model vX.Y.Z``: deregister the version (tag ``model@vX.Y.Z!``)."""
    from gto import api

    with _gto_errors():
        api.deregister(".", artifact, version=version, message=message)


@contextlib.contextmanager
def _gto_errors() -> Iterator[None]:
    from gto.exceptions import GTOException

    try:
        yield
    except GTOException as exc:
        raise UsageError(f"gto: {str(exc).strip().splitlines()[0]}") from None
