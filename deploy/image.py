"""Pushing the container image to ECR, behind one small interface.

The contract every pusher keeps (tests/test_deploy_image_push.py checks it):
- `push(aws, source, repository, tag)` copies the local image `source` to
  `<repository uri>:<tag>` and returns the digest the registry reported, or None when the
  tool did not print one. The caller then asks ECR for the tag's digest (the only digest a
  deployment uses) and refuses a mismatch.
- The registry password (from ecr:GetAuthorizationToken) never appears in a command line:
  it goes through stdin or a temporary auth file readable only by the user.
- A failed tool run raises DeployError with the tool's own message.

Implementations: `docker` (a Docker engine), `skopeo` and `buildah` (daemonless, OCI), and
`oci`, which pushes an OCI image layout directory through ECR's own layer-upload API with
boto3 alone (no engine, no CLI: what CI machines without Docker can use, and what the
tests run against moto).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from .aws import Aws, error_code
from .ecr import Repository, login
from .errors import DeployError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_DIGEST_LINE = re.compile(r"digest: (sha256:[0-9a-f]{64})")


class ImagePusher(Protocol):
    name: str

    def push(self, aws: Aws, source: str, repository: Repository, tag: str) -> str | None: ...


def _run(command: list[str], stdin: str | None = None) -> str:
    if shutil.which(command[0]) is None:
        raise DeployError(f"{command[0]} is not installed (needed by --pusher {command[0]})")
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DeployError(
            f"`{' '.join(command[:2])}` failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


@contextmanager
def _auth_file(registry: str, user: str, password: str) -> Iterator[str]:
    """A containers-auth.json for one registry, 0600, removed afterwards."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    with tempfile.TemporaryDirectory(prefix="pais-auth-") as folder:
        path = Path(folder) / "auth.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
        yield str(path)


class DockerPusher:
    name = "docker"

    def push(self, aws: Aws, source: str, repository: Repository, tag: str) -> str | None:
        registry, user, password = login(aws)
        target = f"{repository.uri}:{tag}"
        _run(["docker", "login", "--username", user, "--password-stdin", registry], stdin=password)
        _run(["docker", "tag", source, target])
        found = _DIGEST_LINE.search(_run(["docker", "push", target]))
        return found.group(1) if found else None


def _with_transport(source: str, default: str) -> str:
    """skopeo/buildah name sources with a transport (`oci:dir`, `docker-daemon:img:tag`)."""
    transports = ("oci:", "oci-archive:", "docker-archive:", "docker-daemon:", "containers-storage:", "dir:")
    return source if source.startswith(transports) else f"{default}:{source}"


def _push_with_auth_file(aws: Aws, command: Callable[[str, str], list[str]]) -> str | None:
    """Run a daemonless tool given (auth file, digest file); the digest it wrote, if any."""
    registry, user, password = login(aws)
    with _auth_file(registry, user, password) as auth, tempfile.TemporaryDirectory() as folder:
        digest_file = Path(folder) / "digest"
        _run(command(auth, str(digest_file)))
        return digest_file.read_text().strip() if digest_file.exists() else None


class SkopeoPusher:
    name = "skopeo"

    def push(self, aws: Aws, source: str, repository: Repository, tag: str) -> str | None:
        target = f"docker://{repository.uri}:{tag}"
        return _push_with_auth_file(
            aws,
            lambda auth, digest: [
                "skopeo",
                "copy",
                "--dest-authfile",
                auth,
                "--digestfile",
                digest,
                _with_transport(source, "docker-daemon"),
                target,
            ],
        )


class BuildahPusher:
    name = "buildah"

    def push(self, aws: Aws, source: str, repository: Repository, tag: str) -> str | None:
        target = f"docker://{repository.uri}:{tag}"
        return _push_with_auth_file(
            aws,
            lambda auth, digest: [
                "buildah",
                "push",
                "--authfile",
                auth,
                "--digestfile",
                digest,
                source,
                target,
            ],
        )


class OciLayoutPusher:
    """An OCI image layout directory (`skopeo copy ... oci:DIR`, `buildah push IMG oci:DIR`)
    pushed with ECR's API: blobs it lacks are uploaded in parts, then the manifest."""

    name = "oci"

    def push(self, aws: Aws, source: str, repository: Repository, tag: str) -> str | None:
        layout = Path(source.removeprefix("oci:"))
        manifest_bytes, media_type = read_manifest(layout)
        manifest = json.loads(manifest_bytes)
        blobs = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
        missing = blobs
        if not aws.dry_run:
            found = aws.read(
                "ecr", "BatchCheckLayerAvailability", repositoryName=repository.name, layerDigests=blobs
            )
            present = {
                layer["layerDigest"]
                for layer in found["layers"]
                if layer.get("layerAvailability") == "AVAILABLE"
            }
            missing = [digest for digest in blobs if digest not in present]
        for digest in missing:
            self._upload_blob(aws, repository.name, digest, blob_path(layout, digest))
        digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        try:
            answer = aws.write(
                "ecr",
                "PutImage",
                repositoryName=repository.name,
                imageManifest=manifest_bytes.decode(),
                imageManifestMediaType=media_type,
                imageTag=tag,
                imageDigest=digest,
            )
        except ClientError as error:
            # The tag is there already: the same image again is fine, another is not.
            if error_code(error) != "ImageAlreadyExistsException":
                raise
            held = aws.read(
                "ecr", "DescribeImages", repositoryName=repository.name, imageIds=[{"imageTag": tag}]
            )
            if held["imageDetails"][0]["imageDigest"] != digest:
                raise DeployError(
                    f"tag {tag} of {repository.uri} already holds another image and tags are immutable: "
                    "push under a new --tag"
                ) from None
            return digest
        return digest if aws.dry_run else answer["image"]["imageId"]["imageDigest"]

    @staticmethod
    def _upload_blob(aws: Aws, repository: str, digest: str, path: Path) -> None:
        upload = aws.write("ecr", "InitiateLayerUpload", repositoryName=repository)
        part_size = int(upload["partSize"]) if not aws.dry_run else 10 * 1024 * 1024
        size = path.stat().st_size
        with path.open("rb") as blob:
            for first in range(0, max(size, 1), part_size):
                chunk = blob.read(part_size)
                aws.write(
                    "ecr",
                    "UploadLayerPart",
                    repositoryName=repository,
                    uploadId=upload["uploadId"],
                    partFirstByte=first,
                    partLastByte=first + len(chunk) - 1,
                    layerPartBlob=chunk,
                )
        done = aws.write(
            "ecr",
            "CompleteLayerUpload",
            repositoryName=repository,
            uploadId=upload["uploadId"],
            layerDigests=[digest],
        )
        if not aws.dry_run and done["layerDigest"] != digest:
            raise DeployError(
                f"ECR computed {done['layerDigest']} for blob {digest}: the upload was corrupted"
            )


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    path = layout / "blobs" / algorithm / hexdigest
    if not path.is_file():
        raise DeployError(f"OCI layout {layout} lacks blob {digest}")
    return path


def read_manifest(layout: Path) -> tuple[bytes, str]:
    """The image manifest of an OCI layout (for an index, its linux/amd64 entry) and its media
    type; the blob's own bytes, so its sha256 is the digest ECR will report."""
    try:
        index = json.loads((layout / "index.json").read_text())
    except (OSError, ValueError) as error:
        raise DeployError(f"{layout} is not an OCI image layout (index.json: {error})") from None
    entry = _pick(index.get("manifests", []), layout)
    while entry["mediaType"] in (OCI_INDEX, DOCKER_LIST):
        entry = _pick(
            json.loads(blob_path(layout, entry["digest"]).read_bytes()).get("manifests", []), layout
        )
    data = blob_path(layout, entry["digest"]).read_bytes()
    if "sha256:" + hashlib.sha256(data).hexdigest() != entry["digest"]:
        raise DeployError(f"manifest blob {entry['digest']} in {layout} does not match its digest")
    return data, entry["mediaType"]


def _pick(entries: list[dict[str, Any]], layout: Path) -> dict[str, Any]:
    if not entries:
        raise DeployError(f"OCI layout {layout} has no manifests")
    for entry in entries:
        platform = entry.get("platform", {})
        if platform.get("os", "linux") == "linux" and platform.get("architecture", "amd64") == "amd64":
            return entry
    raise DeployError(f"OCI layout {layout} has no linux/amd64 image")


PUSHERS: dict[str, type] = {
    pusher.name: pusher for pusher in (DockerPusher, SkopeoPusher, BuildahPusher, OciLayoutPusher)
}


def pusher(name: str) -> ImagePusher:
    return PUSHERS[name]()


def default_pusher() -> str:
    """docker when it is installed, else the first daemonless tool found, else oci."""
    for name in ("docker", "buildah", "skopeo"):
        if shutil.which(name):
            return name
    return "oci"
