"""Helpers for the deploy tests: running `python -m deploy` in process against the AWS
emulator, and a real (tiny) OCI image layout to push."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from deploy.cli import main

REGION = "us-east-1"


def run_deploy(endpoint_url: str, *args: str, status: int = 0) -> Any:
    """`python -m deploy <args> --output json` against `endpoint_url`; the parsed output, or
    stderr when the command is expected to fail (`status` != 0)."""
    return run_deploy_logged(endpoint_url, *args, status=status)[0]


def _argv(endpoint_url: str, args: tuple[str, ...]) -> list[str]:
    return [
        *args,
        "--endpoint-url",
        endpoint_url,
        "--region",
        REGION,
        "--max-attempts",
        "1",
        "--poll-interval",
        "0.2",
        "--output",
        "json",
    ]


def run_deploy_logged(endpoint_url: str, *args: str, status: int = 0) -> tuple[Any, str]:
    """As `run_deploy`, with what the command wrote to stderr (its progress lines)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(_argv(endpoint_url, args))
    assert code == status, f"exit {code} for {args}:\n{err.getvalue()}\n{out.getvalue()}"
    return (json.loads(out.getvalue()) if status == 0 else err.getvalue()), err.getvalue()


def run_deploy_process(
    endpoint_url: str, *args: str, env: dict[str, str], status: int = 0, timeout_s: float = 900
) -> tuple[Any, str]:
    """`python -m deploy <args> --output json` as its own process, with `env` added to this
    one's environment (e.g. a scratch BENTOML_HOME, which a process that has imported
    bentoml could not switch to); (the parsed output or, for `status` != 0, stderr; stderr)."""
    from .servers import REPO, service_env

    done = subprocess.run(
        [sys.executable, "-m", "deploy", *_argv(endpoint_url, args)],
        cwd=REPO,
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == status, f"exit {done.returncode} for {args}:\n{done.stderr}\n{done.stdout}"
    return (json.loads(done.stdout) if status == 0 else done.stderr), done.stderr


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_oci_layout(layout: Path, files: dict[str, bytes]) -> Path:
    """An OCI image layout with one layer holding `files`: what `skopeo copy ... oci:DIR`
    or `buildah push IMG oci:DIR` writes."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layer_tar = tar_bytes.getvalue()
    layer = _blob(layout, gzip.compress(layer_tar, mtime=0))
    config = _blob(
        layout,
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": ["python", "-m", "deploy.entrypoint"], "Cmd": ["serve"]},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
            }
        ).encode(),
    )
    manifest = _blob(
        layout,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
            }
        ).encode(),
    )
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest}],
            }
        )
    )
    return layout


# Where instance types appear in planned calls, and the botocore enum each must belong to.
INSTANCE_TYPE_SHAPES = {
    ("sagemaker", "CreateEndpointConfig"): "ProductionVariantInstanceType",
    ("sagemaker", "CreateTransformJob"): "TransformInstanceType",
    ("sagemaker", "CreateTrainingJob"): "TrainingInstanceType",
    ("ec2", "RunInstances"): "InstanceType",
}


def _instance_types(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["InstanceType"]] if isinstance(value.get("InstanceType"), str) else []
        return found + [t for item in value.values() for t in _instance_types(item)]
    if isinstance(value, list):
        return [t for item in value for t in _instance_types(item)]
    return []


def check_plan(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """Every planned call checked with botocore itself (names, types, required members) and
    every instance type against botocore's enum; returns the (service, operation) list."""
    import botocore.session
    from botocore.validate import validate_parameters

    session = botocore.session.get_session()
    assert plan["dry_run"] is True
    operations = []
    for call in plan["calls"]:
        model = session.get_service_model(call["service"])
        validate_parameters(call["params"], model.operation_model(call["operation"]).input_shape)
        types = _instance_types(call["params"])
        if types:
            allowed = model.shape_for(INSTANCE_TYPE_SHAPES[(call["service"], call["operation"])]).enum
            assert set(types) <= set(allowed), (call["operation"], types)
        operations.append((call["service"], call["operation"]))
    return operations


def push_layout(endpoint_url: str, layout: Path, tag: str, *extra: str, status: int = 0) -> Any:
    """`push --pusher oci` of an OCI layout, with the project's model store."""
    from .servers import service_env

    store = service_env()["BENTOML_HOME"]
    return run_deploy(
        endpoint_url,
        "push",
        "--pusher",
        "oci",
        "--image",
        str(layout),
        "--tag",
        tag,
        "--model-store",
        store,
        *extra,
        status=status,
    )


def copy_artifacts(moto_url: str, model_data: str, key: str) -> str:
    """The release's artifacts (with their sha256 metadata and tags: as `push` would have
    stored them under `key`), so that a test may purge them without harming the others."""
    from urllib.parse import urlencode

    from .aws_emulator import moto_client

    bucket, source = model_data.removeprefix("s3://").split("/", 1)
    s3 = moto_client(moto_url, "s3")
    original = s3.get_object(Bucket=bucket, Key=source)
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=source)["TagSet"]}
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=original["Body"].read(),
        Metadata=original["Metadata"],
        Tagging=urlencode(tags),
    )
    return f"s3://{bucket}/{key}"
