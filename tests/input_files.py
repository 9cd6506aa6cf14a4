"""A batch of unseen rows (adult.test) in every form a user may give to ``--input``:
CSV or gzipped CSV with or without a header row, Parquet, Feather, a JSON array of
records, JSON lines (gzipped or not); with or without the target."""

from __future__ import annotations

import gzip
import itertools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops.config import DataConfig
from mlops.data.ingestion import ingest
from mlops.io import tables

ROWS = 120
TEST_FILE = Path("data/external/adult/adult.test.gz")


@dataclass(frozen=True)
class Variant:
    format: str  # csv | csv.gz | parquet | feather | json | jsonl | jsonl.gz
    labelled: bool
    header: bool

    @property
    def id(self) -> str:
        labels = "labelled" if self.labelled else "unlabelled"
        return f"{self.format}-{labels}-{'header' if self.header else 'headerless'}"


VARIANTS = [
    *(Variant(*v) for v in itertools.product(("csv", "csv.gz"), (True, False), (True, False))),
    Variant("parquet", True, True),
    Variant("parquet", False, True),
    Variant("feather", True, True),
    Variant("json", True, True),
    Variant("jsonl", False, True),
    Variant("jsonl.gz", True, True),
]
# Formats with their own column types (no header row to leave out).
_TYPED = ("parquet", "feather", "json", "jsonl", "jsonl.gz")


def _source_lines(root: Path) -> list[str]:
    """The first ROWS rows of adult.test as it ships: ", "-separated, labels ending in "."."""
    text = gzip.decompress((root / TEST_FILE).read_bytes()).decode()
    return text.splitlines()[1 : ROWS + 1]  # line 0 is its "|1x3 Cross validator" comment


def _csv_text(root: Path, config: DataConfig, labelled: bool, header: bool) -> str:
    rows = _source_lines(root)
    columns = list(config.columns or ())
    if not labelled:
        rows = [row.rsplit(",", 1)[0] for row in rows]
        columns = columns[:-1]
    # A header as people write it: other case and separators than params.yaml's names.
    first = [", ".join(name.title() for name in columns)] if header else ["|1x3 Cross validator"]
    return "\n".join(first + rows) + "\n"


def write_variant(variant: Variant, folder: Path, root: Path, config: DataConfig) -> Path:
    """The batch as ``variant`` says, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"batch.{variant.format}"
    if variant.format in _TYPED:
        own = write_variant(Variant("csv", True, False), folder / "source", root, config)
        raw = tables.read_source(config, own)
        raw = raw if variant.labelled else raw.drop(columns=["income"])
        if variant.format == "feather":
            raw.to_feather(path)
        elif variant.format.startswith("json"):
            plain = path.with_name("batch.json" if variant.format == "json" else "batch.jsonl")
            tables.write_output(plain, raw)
            if variant.format.endswith(".gz"):
                path.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
                plain.unlink()
        else:
            raw.to_parquet(path, index=False)
        return path
    data = _csv_text(root, config, variant.labelled, variant.header).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if variant.format == "csv.gz" else data)
    return path


def expected(variant: Variant, folder: Path, root: Path, config: DataConfig) -> pd.DataFrame:
    """What ingest makes of the batch: the source's own format read as params.yaml says."""
    path = write_variant(Variant("csv", True, False), folder / "reference", root, config)
    frame = ingest(tables.read_source(config, path), config)
    return frame if variant.labelled else frame.drop(columns=["income"])
