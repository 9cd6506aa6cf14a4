"""The only module that touches disk: tables, JSON, YAML, model files, params.

Every write goes to a temporary file in the target's folder and is renamed
into place, so a failure never leaves a half-written artefact behind.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops.config import PARAMS_FILE, DataConfig, Params, parse_params
from mlops.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

_PARQUET_MAGIC = b"PAR1"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


# --- atomic writes -----------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
    if not path.is_file():
        raise UsageError(f"{path}: {what} not found")


def read_json(path: Path, what: str = "JSON file") -> Any:
    _require_file(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {what} is not valid JSON ({exc})") from None


def read_yaml(path: Path, what: str = "YAML file") -> Any:
    _require_file(path, what)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = str(exc).replace("\n", " ")
        raise UsageError(f"{path}: {what} is not valid YAML ({detail})") from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    return parse_params(read_yaml(path, "params file"), source=str(path))


def read_parquet(path: Path, what: str = "table") -> pd.DataFrame:
    import pandas as pd
    import pyarrow

    _require_file(path, what)
    try:
        return pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: {what} is not a readable Parquet file ({exc})") from None


def read_csv(path: Path, what: str = "CSV table") -> pd.DataFrame:
    import pandas as pd

    _require_file(path, what)
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
    import pandas as pd

    data = _read_bytes(path)
    if b"\x00" in data[:65536]:
        raise UsageError(f"{path}: not a CSV or Parquet file (binary content)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a CSV or Parquet file (not UTF-8 text)") from None
    if not text.strip():
        raise UsageError(f"{path}: data source is empty")
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=config.separator,
            header=0 if config.header else None,
            names=list(config.columns) if config.columns else None,
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
    import skops.io as sio

    _require_file(path, "model file")
    data = path.read_bytes()
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a skops model file ({exc})") from None
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise UsageError(f"{path}: model file contains untrusted types: {', '.join(refused)}")
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
    elsewhere) is refused before skops reads a byte of it.
    """
    _require_file(path, "model file")
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


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's bytes and behaviour."""
    import platform
    from importlib import metadata

    packages = ("scikit-learn", "pandas", "numpy", "optuna", "skops", "pyarrow")
    return {"python": platform.python_version()} | {p: metadata.version(p) for p in packages}
