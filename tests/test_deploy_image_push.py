"""Contract of the image pushers (deploy/image.py), with stand-in `docker`, `skopeo` and
`buildah` on PATH that record how they are called (no container engine runs here).

What the tool assumes of each tool, and checks here:
- it is handed the local image and the target `<registry>/<repository>:<tag>`;
- it gets ECR's password only on stdin (docker login --password-stdin) or in an auth file
  readable by the user alone, never in its arguments;
- it reports the pushed digest (docker push's "digest: sha256:..." line, or
  --digestfile), which the tool compares with what ECR then holds under the tag;
- a failing tool stops the push with its own message.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from deploy import ecr, image
from deploy.aws import Aws, AwsOptions
from deploy.errors import DeployError
from deploy.naming import resource_tags
from deploy.ownership import Ownership

from .deploy_support import run_deploy

DIGEST = "sha256:" + "ab" * 32

STAND_IN = f"""#!{sys.executable}
import json, os, stat, sys
argv = sys.argv[1:]
record = {{"tool": os.path.basename(sys.argv[0]), "argv": argv}}
if "--password-stdin" in argv:
    record["stdin"] = sys.stdin.read()
for flag in ("--authfile", "--dest-authfile"):
    if flag in argv:
        path = argv[argv.index(flag) + 1]
        record["auth"] = json.load(open(path))
        record["auth_mode"] = oct(stat.S_IMODE(os.stat(path).st_mode))
if "--digestfile" in argv:
    open(argv[argv.index("--digestfile") + 1], "w").write("{DIGEST}\\n")
with open(os.environ["STAND_IN_RECORD"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if os.environ.get("STAND_IN_FAIL") and argv[:1] == ["push"]:
    print("denied: requested access to the resource is denied", file=sys.stderr)
    sys.exit(1)
if argv[:1] == ["push"] and record["tool"] == "docker":
    print("release-1: digest: {DIGEST} size: 1573")
"""


@pytest.fixture
def stand_ins(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("docker", "skopeo", "buildah"):
        path = folder / tool
        path.write_text(STAND_IN)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STAND_IN_RECORD", str(record))
    return record


def _calls(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.fixture
def aws(moto_endpoint) -> Aws:
    return Aws(AwsOptions(region="us-east-1", endpoint_url=moto_endpoint, max_attempts=1))


@pytest.fixture
def repository(aws) -> ecr.Repository:
    tags = resource_tags("shared", {})  # as `push` tags it: each test's call finds it the tool's
    return ecr.ensure_repository(aws, Ownership(aws, "shared"), "pais-contract", tags, keep_images=10)


def _password(aws: Aws) -> str:
    return ecr.login(aws)[2]


def test_docker_logs_in_on_stdin_tags_and_pushes(stand_ins, aws, repository):
    assert image.pusher("docker").push(aws, "pais:latest", repository, "release-1") == DIGEST
    login, tag, push = _calls(stand_ins)
    registry = repository.uri.split("/")[0]
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", registry]
    assert login["stdin"] == _password(aws)
    assert tag["argv"] == ["tag", "pais:latest", f"{repository.uri}:release-1"]
    assert push["argv"] == ["push", f"{repository.uri}:release-1"]
    assert all(_password(aws) not in " ".join(call["argv"]) for call in _calls(stand_ins))


@pytest.mark.parametrize("tool", ["skopeo", "buildah"])
def test_daemonless_tools_get_a_private_auth_file(tool, stand_ins, aws, repository):
    assert image.pusher(tool).push(aws, "oci:/images/pais", repository, "release-1") == DIGEST
    (call,) = _calls(stand_ins)
    registry = repository.uri.split("/")[0]
    expected_auth = base64.b64encode(f"AWS:{_password(aws)}".encode()).decode()
    assert call["auth"] == {"auths": {registry: {"auth": expected_auth}}}
    assert call["auth_mode"] == "0o600"
    assert call["argv"][-2:] == ["oci:/images/pais", f"docker://{repository.uri}:release-1"]
    assert _password(aws) not in " ".join(call["argv"])


def test_skopeo_reads_a_bare_name_from_the_docker_daemon(stand_ins, aws, repository):
    image.pusher("skopeo").push(aws, "pais:latest", repository, "t")
    assert _calls(stand_ins)[0]["argv"][-2] == "docker-daemon:pais:latest"


def test_a_failing_tool_stops_the_push_with_its_message(stand_ins, aws, repository, monkeypatch):
    monkeypatch.setenv("STAND_IN_FAIL", "1")
    with pytest.raises(DeployError, match="requested access to the resource is denied"):
        image.pusher("docker").push(aws, "pais:latest", repository, "release-1")


def test_push_refuses_a_digest_that_ecr_does_not_hold(stand_ins, aws_emulator):
    """The stand-in reports a push but nothing reached ECR: the tool does not trust it."""
    error = run_deploy(
        aws_emulator.url, "push", "--pusher", "docker", "--tag", "never-arrived", "--skip-artifacts", status=1
    )
    assert "no image {'imageTag': 'never-arrived'}" in error
