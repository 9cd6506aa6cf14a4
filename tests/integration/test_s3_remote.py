"""The DVC remote over S3: moto's standalone server on loopback stands in for AWS (as
in DVC's own S3 plugin tests), one per session, enforcing credentials the way AWS does.

The project's remote is configured as a team configures it (`s3://bucket/path`, an
``endpointurl``, committed in .dvc/config) and the credentials come from the
environment, as the workflows pass them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
Tested: `dvc push`, promotion's backup, a rollback in a fresh clone (no DVC cache)
fetching the model from S3, CD's pull (.github/scripts/release.sh), and a broken remote
(wrong endpoint, refused credentials, missing bucket): one line naming the remote and
the operation, and nothing changed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops.cli import main
from mlops.io import dvc, files
from tests.conftest import BIN, edit_params
from tests.integration.registry_project import (
    VERSIONS,
    cache_file,
    commit_all,
    manifest,
    sh,
    state,
    version_md5,
)
from tests.integration.test_release import LENIENT, ci_clone, publish, release, remote_tags

V1, V2, V3 = VERSIONS
BUCKET = "models"
REMOTE = "storage"
# Users AWS knows nothing of: the server accepts only the key it issued.
ADMIN = {"aws_access_key_id": "admin", "aws_secret_access_key": "admin"}


@dataclass(frozen=True)
class S3:
    endpoint: str
    key_id: str
    secret: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )

    def md5_of(self, prefix: str, md5: str) -> str:
        """The md5 of the object DVC stores for ``md5`` under ``prefix`` (downloaded)."""
        key = f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"
        body = self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return files.bytes_md5(body)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """moto_server on a free loopback port, a bucket, and an IAM user allowed S3; from
    then on the server refuses any other credentials."""
    import boto3

    endpoint = f"http://127.0.0.1:{_free_port()}"
    port = endpoint.rsplit(":", 1)[1]
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", port],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"{endpoint}/moto-api/data.json")
        admin = {"endpoint_url": endpoint, "region_name": "us-east-1", **ADMIN}
        boto3.client("s3", **admin).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="ci")
        policy = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(
            UserName="ci",
            PolicyName="s3",
            PolicyDocument=json.dumps(policy | {"Version": "2012-10-17"}),
        )
        key = iam.create_access_key(UserName="ci")["AccessKey"]
        enforce = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        urllib.request.urlopen(enforce, timeout=10).close()
        yield S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(autouse=True)
def credentials(s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI's environment: the key in AWS_* variables, no ~/.aws files; and no S3 client
    left from another test (s3fs reuses one per endpoint within a process)."""
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    s3fs.S3FileSystem.clear_instance_cache()


def set_remote(project: Path, url: str, level: str = "repo", **options: str) -> None:
    """`dvc remote add -d storage URL` and `dvc remote modify storage KEY VALUE` (at
    ``level``: "repo" is the committed .dvc/config, "local" this clone's own)."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo, repo.config.edit(level) as config:
        config["remote"][REMOTE] = {**config["remote"].get(REMOTE, {}), "url": url, **options}
        config["core"]["remote"] = REMOTE


def use_s3(project: Path, s3: S3, prefix: str) -> None:
    """Configure and commit the S3 remote, as a team does once."""
    set_remote(project, f"s3://{BUCKET}/{prefix}", endpointurl=s3.endpoint)
    commit_all(project, "DVC remote on S3")


def fresh_clone(project: Path, target: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git clone (history, tags, .dvc/config; no DVC cache), as the working directory."""
    subprocess.run(["git", "clone", "-q", str(project), str(target)], check=True)
    monkeypatch.chdir(target)
    return target


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# --- the remote working ---------------------------------------------------------------


def test_dvc_push_then_a_fresh_clone_pulls_the_model(
    repo: Path, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3(repo, s3, "push")
    md5 = manifest(repo)["model_md5"]  # v1.2.0, HEAD's model

    sh(repo, "dvc", "push")

    assert s3.md5_of("push", md5) == md5
    clone = fresh_clone(repo, tmp_path / "clone", monkeypatch)
    sh(clone, "dvc", "pull", "models/model.skops")
    assert files.file_md5(clone / "models/model.skops") == md5


def test_promotion_backs_the_model_up_and_a_fresh_clone_serves_it(
    candidate: Path,
    s3: S3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_s3(candidate, s3, "promote")
    md5 = files.file_md5(candidate / "models/model.skops")

    assert main(["promote"]) == 0

    assert s3.md5_of("promote", md5) == md5
    assert manifest(candidate)["model_md5"] == md5
    # A clone without the cache loads production's model from S3, as a server starts.
    rows = tmp_path / "rows.parquet"
    target = yaml.safe_load((candidate / "params.yaml").read_text())["data"]["target"]
    test_rows = pd.read_parquet(candidate / "data/split/test.parquet").head(5)
    test_rows.drop(columns=[target]).to_parquet(rows)
    clone = fresh_clone(candidate, tmp_path / "clone", monkeypatch)
    assert not cache_file(clone, md5).exists()
    assert main(["predict", "--input", str(rows), "--output", str(tmp_path / "out.csv")]) == 0
    assert files.file_md5(cache_file(clone, md5)) == md5
    assert len(pd.read_csv(tmp_path / "out.csv")) == 5


def test_rollback_in_a_fresh_clone_fetches_the_model_from_s3(
    repo: Path,
    s3: S3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_s3(repo, s3, "rollback")
    v2_md5 = version_md5(repo, V2)
    assert dvc.push_object(v2_md5, repo) is None  # as `mlops promote` of v1.1.0 did
    clone = fresh_clone(repo, tmp_path / "clone", monkeypatch)

    assert main(["rollback"]) == 0

    assert "from the DVC remote" in capsys.readouterr().out
    assert files.file_md5(cache_file(clone, v2_md5)) == v2_md5
    assert manifest(clone)["version"] == V2


def test_fetch_in_a_fresh_clone_gets_productions_model_from_s3(
    repo: Path, s3: S3, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_s3(repo, s3, "fetch")
    md5 = manifest(repo)["model_md5"]
    assert dvc.push_object(md5, repo) is None
    clone = fresh_clone(repo, repo.parent / "clone", monkeypatch)

    assert main(["fetch"]) == 0

    assert f"model {V3} (md5 {md5}) fetched from the DVC remote" in capsys.readouterr().out
    assert files.file_md5(cache_file(clone, md5)) == md5


def test_cd_pulls_the_committed_outputs_from_s3(candidate: Path, s3: S3, tmp_path: Path) -> None:
    """CD in a fresh checkout: the pipeline's outputs come from S3, so `dvc repro train`
    has nothing to rerun, and the promotion is pushed."""
    # CD gates on the committed report: one the gate stage wrote for this model.
    edit_params(candidate, gate=LENIENT)
    sh(candidate, "dvc", "repro", "-q", "gate")
    commit_all(candidate, "the gate judged the candidate")
    use_s3(candidate, s3, "cd")
    sh(candidate, "dvc", "push")
    origin = tmp_path / "origin.git"
    publish(candidate, origin)

    proc = release(ci_clone(origin, tmp_path / "ci"), "promote", str(origin), "main")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Running stage" not in proc.stdout + proc.stderr
    assert "model@v1.3.0" in remote_tags(origin)


# --- a broken remote ------------------------------------------------------------------

BROKEN = {
    "wrong endpoint": ({"endpointurl": f"http://127.0.0.1:{_free_port()}"}, {}),
    "refused credentials": ({}, {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}),
    "missing bucket": ({"url": "s3://no-such-bucket/models"}, {}),
}


def break_remote(project: Path, s3: S3, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Misconfigure this clone's remote (its own .dvc/config.local) or its credentials."""
    options, env = BROKEN[how]
    url = options.get("url", f"s3://{BUCKET}/broken")
    set_remote(project, url, "local", endpointurl=options.get("endpointurl", s3.endpoint))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("how", BROKEN)
def test_a_broken_remote_refuses_promotion(
    candidate: Path,
    s3: S3,
    how: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    break_remote(candidate, s3, how, monkeypatch)
    md5 = files.file_md5(candidate / "models/model.skops")
    before = state(candidate)

    assert main(["promote"]) == 2

    err = one_line(capsys)
    assert f"DVC remote '{REMOTE}' (s3://" in err
    assert f"push of {md5} failed" in err
    assert state(candidate) == before


@pytest.mark.parametrize("how", BROKEN)
def test_a_broken_remote_refuses_rollback_in_a_fresh_clone(
    repo: Path,
    s3: S3,
    how: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_s3(repo, s3, "broken")
    v2_md5 = version_md5(repo, V2)
    assert dvc.push_object(v2_md5, repo) is None
    clone = fresh_clone(repo, repo.parent / "clone", monkeypatch)
    break_remote(clone, s3, how, monkeypatch)
    before = state(clone)

    assert main(["rollback"]) == 2

    err = one_line(capsys)
    assert f"DVC remote '{REMOTE}' (s3://" in err
    assert f"pull of {v2_md5} failed" in err
    assert state(clone) == before
    assert not cache_file(clone, v2_md5).exists()
    # A server's start (or an image's build) fetching production's model stops alike.
    assert main(["fetch"]) == 2
    assert f"pull of {manifest(clone)['model_md5']} failed" in one_line(capsys)


def test_cd_stops_on_a_broken_remote_before_anything_changes(
    candidate: Path, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3(candidate, s3, "cd-broken")
    origin = tmp_path / "origin.git"
    publish(candidate, origin)
    tags = remote_tags(origin)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")

    proc = release(ci_clone(origin, tmp_path / "ci"), "promote", str(origin), "main")

    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: DVC remote '{REMOTE}' (s3://{BUCKET}/cd-broken): dvc pull")
    assert remote_tags(origin) == tags
