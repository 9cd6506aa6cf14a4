"""Model files: skops archives written byte-reproducibly and loaded only when trusted.

A model is loaded with skops' reviewed list of trusted types, and (from the
pipeline's own path) only after its md5 matches what dvc.lock records.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops.errors import UsageError
from mlops.io.dvc import expected_md5
from mlops.io.files import file_md5, require_file, write_bytes

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


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


def dump(path: Path, model: object) -> None:
    import skops.io as sio

    write_bytes(path, canonical_skops(sio.dumps(model)))


def load(path: Path, trusted: Sequence[str]) -> Any:
    """Load a skops model, refusing any type outside the reviewed ``trusted`` list."""
    require_file(path, "model file")
    return load_bytes(path.read_bytes(), trusted, str(path))


def load_bytes(data: bytes, trusted: Sequence[str], source: str) -> Any:
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


def load_verified(path: Path, trusted: Sequence[str], lock_path: Path) -> Any:
    """``load``, after checking the file's md5 against what ``lock_path`` records.

    A model file changed outside the pipeline (tampered with, or copied in from
    elsewhere) is refused before skops reads a byte of it, as is any model when
    there is no lock file to check it against.
    """
    require_file(path, "model file")
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
    return load(path, trusted)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's bytes and behaviour."""
    import platform
    from importlib import metadata

    packages = ("scikit-learn", "pandas", "numpy", "optuna", "skops", "pyarrow")
    return {"python": platform.python_version()} | {p: metadata.version(p) for p in packages}
