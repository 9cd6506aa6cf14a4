"""The serving image's Dockerfile, checked without a container engine (none runs here):
hadolint finds nothing, and its shape is what the README promises (multi-stage, built
from the lock without the dev group, a non-root user, a health check on the server's
liveness endpoint, `mlops serve` as the command, a build context without .git, .venv,
data or the DVC cache)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from mlops.cli import build_parser
from tests.conftest import BIN, ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = BIN / "hadolint"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [value for word, value in self.instructions if word == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages(text: str) -> list[Stage]:
    found: list[Stage] = []
    for word, value in instructions(text):
        if word == "FROM":
            parts = value.split()
            found.append(Stage(parts[0], parts[2] if len(parts) > 2 else None))
        elif found:
            found[-1].instructions.append((word, value))
    return found


def build_args(text: str) -> dict[str, str]:
    """The ARGs declared before the first FROM, with their defaults."""
    args = {}
    for word, value in instructions(text):
        if word == "FROM":
            break
        if word == "ARG":
            name, _, default = value.partition("=")
            args[name] = default
    return args


def chain(all_stages: list[Stage], stage: Stage) -> list[Stage]:
    """``stage`` and the stages it is built on, nearest first."""
    by_name = {s.name: s for s in all_stages if s.name}
    found = [stage]
    while found[-1].base in by_name:
        found.append(by_name[found[-1].base])
    return found


def final_stages(all_stages: list[Stage], text: str) -> list[Stage]:
    """Every stage the image may end as: the last FROM, its ${ARG} resolved to each
    stage name it can take."""
    pattern = re.sub(r"\\\$\\\{\w+\\\}", ".+", re.escape(all_stages[-1].base))
    options = [s for s in all_stages if s.name and re.fullmatch(pattern, s.name)]
    assert options, f"the last FROM {all_stages[-1].base} names no stage"
    return [
        Stage(s.name or "", None, [*s.instructions, *all_stages[-1].instructions]) for s in options
    ]


def excluded(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a folder
    above it decides; a pattern starting with ! includes again."""
    candidates = [path, *(str(p) for p in PurePosixPath(path).parents if str(p) != ".")]
    verdict = False
    for pattern in patterns:
        include = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatchcase(c, body) for c in candidates):
            verdict = not include
    return verdict


@pytest.fixture(scope="module")
def text() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def parsed(text: str) -> list[Stage]:
    return stages(text)


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    # The default threshold fails on any finding, info and style included.
    return subprocess.run(
        [str(HADOLINT), "--format", "json", str(path)], capture_output=True, text=True, check=False
    )


def test_hadolint_finds_nothing() -> None:
    proc = lint(DOCKERFILE)
    assert proc.returncode == 0, json.dumps(json.loads(proc.stdout or "[]"), indent=1)


def test_hadolint_would_catch_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install mlops\nUSER root\nCMD mlops serve\n")
    proc = lint(careless)
    codes = {finding["code"] for finding in json.loads(proc.stdout)}
    assert proc.returncode != 0
    assert {"DL3006", "DL3013", "DL3002", "DL3025"} <= codes


def test_it_is_multi_stage_and_built_from_the_lock_without_dev_dependencies(
    parsed: list[Stage],
) -> None:
    assert len(parsed) >= 2
    runs = [value for stage in parsed for value in stage.all("RUN")]
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs
    for sync in syncs:
        assert {"--frozen", "--no-dev"} <= set(shlex.split(sync))
    assert not any(re.search(r"\bpip3? install\b|\buv (pip|add|lock)\b", run) for run in runs)
    # The environment is copied out of the build stage: no uv, no compilers at run time.
    runtime = chain(parsed, final_stages(parsed, DOCKERFILE.read_text())[0])
    copies = [value for stage in runtime for value in stage.all("COPY")]
    assert any("--from=build" in copy and ".venv" in copy for copy in copies)


def test_uv_is_the_version_the_makefile_pins(text: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned
    assert build_args(text)["UV_VERSION"] == pinned.group(1)


def test_every_image_runs_as_an_unprivileged_user(text: str, parsed: list[Stage]) -> None:
    for final in final_stages(parsed, text):
        users = [u for stage in chain(parsed, final) for u in stage.all("USER")]
        assert users, f"{final.base}: no USER"
        user = users[0].split(":")[0]  # the nearest USER is the one in force
        assert user not in {"root", "0"}, f"{final.base} runs as {user}"


def test_the_model_build_argument_names_a_stage_for_each_choice(
    text: str, parsed: list[Stage]
) -> None:
    default = build_args(text)["MODEL"]
    names = {s.name for s in parsed}
    assert f"model-{default}" in names
    assert {"model-fetched", "model-baked"} <= names
    baked = next(s for s in parsed if s.name == "model-baked")
    fetch = next(run for run in baked.all("RUN") if "mlops fetch" in run)
    # Credentials arrive as BuildKit secrets, never as build arguments or ENV.
    assert "--mount=type=secret" in fetch
    assert not re.search(r"(ARG|ENV)\s+AWS_", text)


def test_the_command_is_mlops_serve_checked_by_health_on_its_port(
    text: str, parsed: list[Stage]
) -> None:
    final = final_stages(parsed, text)[0]
    every = chain(parsed, final)
    cmd = json.loads(final.all("CMD")[-1])
    assert cmd[:2] == ["mlops", "serve"]
    args = build_parser("serve").parse_args(cmd[1:])  # the CLI accepts it as written
    assert args.host == "0.0.0.0"
    (health,) = [h for stage in every for h in stage.all("HEALTHCHECK")]
    url = re.search(r"http://127\.0\.0\.1:(\d+)/health\b", health)
    assert url, health
    assert int(url.group(1)) == args.port
    exposed = [e for stage in every for e in stage.all("EXPOSE")]
    assert exposed == [str(args.port)]


def test_the_build_context_has_what_is_copied_and_nothing_private(
    parsed: list[Stage],
) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        shlex.split(value)[:-1]
        for stage in parsed
        for value in stage.all("COPY")
        if "--from=" not in value
    ]
    for source in (s for sources in copied for s in sources):
        assert not excluded(source.rstrip("/"), patterns), f"{source} is copied but ignored"
    assert not excluded("src/mlops/cli.py", patterns)
    for private in (
        ".git/config",
        ".venv/bin/python",
        ".tools/bin/uv",
        "data/raw/dataset.parquet",
        "data/external/adult/adult.data.gz",
        ".dvc/cache/files/md5/00/11",
        ".dvc/config.local",
        ".dvc/tmp/lock",
        "models/model.skops",
        "reports/metrics.json",
        "logs/predictions/2026-01-01.jsonl",
        "src/mlops/__pycache__/cli.cpython-311.pyc",
        "tests/conftest.py",
    ):
        assert excluded(private, patterns), f"{private} would be sent to the build"
