"""Files on disk: atomic writes, checked reads, params.yaml, checksums.

Every write goes to a temporary file in the target's folder and is renamed
into place, so a failure never leaves a half-written artefact behind. Every
read of a missing or unreadable file ends in one UsageError line.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops.config import PARAMS_FILE, Params, parse_params
from mlops.errors import UsageError, clip, shorten

if TYPE_CHECKING:
    import pandas as pd


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


def require_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise UsageError(f"{path}: {what} is a directory; expected a file")
    if not path.is_file():
        raise UsageError(f"{path}: {what} not found")


def read_json(path: Path, what: str = "JSON file") -> Any:
    require_file(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {what} is not valid JSON ({exc})") from None


def read_yaml(path: Path, what: str = "YAML file") -> Any:
    """A YAML file's content; a key given twice in one mapping is an error, not "last wins"."""
    require_file(path, what)
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
            name = clip(key) if isinstance(key, str) else shorten(key, 40)
            child = f"{path}.{name}" if path else name
            if key in first_lines:
                first = first_lines[key]
                raise _DuplicateKey(f"duplicate key {child} (line {line}; first on line {first})")
            first_lines[key] = line
            self._check_unique(value_node, child)


def load_params(path: Path = PARAMS_FILE) -> Params:
    return parse_params(read_yaml(path, "params file"), source=str(path))


def read_parquet(path: Path, what: str = "table") -> pd.DataFrame:
    require_file(path, what)  # before pandas' import, so a missing input fails fast
    import pandas as pd
    import pyarrow

    try:
        return pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: {what} is not a readable Parquet file ({exc})") from None


def read_csv(path: Path, what: str = "CSV table") -> pd.DataFrame:
    require_file(path, what)
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


def read_bytes(path: Path, what: str = "file") -> bytes:
    require_file(path, what)
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


def read_optional(path: Path) -> bytes | None:
    """``path``'s bytes, or None when there is no such file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def parse_yaml_bytes(data: bytes | None) -> Any:
    """A committed JSON or YAML file's content (JSON is YAML); None when absent or unreadable."""
    if data is None:
        return None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError:
        return None
