"""The container's entrypoint (also run on the host by `make serve-sagemaker`).

    python -m deploy.entrypoint serve [--host H]   SageMaker: port $SAGEMAKER_BIND_TO_PORT or 8080,
                                                  model artifacts from /opt/ml/model when present
    python -m deploy.entrypoint [--host H]         plain REST server on $PORT or 3000
    python -m deploy.entrypoint <command ...>      runs the command (e.g. bash) for debugging

Before the server starts it:
- checks the model artifacts against the digest the deploy tool recorded (PAIS_ARTIFACTS_SHA256:
  the sha256 of the digest manifest packed into the artifacts, which lists every file's
  sha256), so that artifacts changed in S3 after the deploy (SageMaker downloads them again
  for every new instance) are refused instead of served;
- fetches secrets from SSM Parameter Store (PAIS_SECRETS_FROM_SSM, PAIS_TLS_FROM_SSM) with
  the role the container runs as, so that no secret is in the image, the SageMaker model's
  Environment or EC2 user data: the values exist only in the server's environment and, for
  the TLS key, in a file only this user can read;
- runs the service's preflight checks (settings, device).
Any failure exits 2 with a message saying what was wrong: BentoML would restart a failing
model worker forever, and SageMaker would only notice at its health-check timeout. Then it
execs `bentoml serve`, so the serving process is the container's PID 1 and receives
SIGTERM directly (SageMaker and `docker stop` send it, then SIGKILL after 30 s). Inside a
bento image it serves the bento at $BENTO_PATH; on the host, service.gateway:PAIS.

The image carries this one file of deploy/ (bentofile.yaml's include) and runs it as a
script, so it imports nothing from deploy/; the deploy tool imports the names below from it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SAGEMAKER_MODEL_DIR = "/opt/ml/model"

# --- the server's settings that deploy/ writes or reads (service/settings.py names them):
# this is the one place deploy/ spells them.
SETTING_DEVICE = "PAIS_DEVICE"
SETTING_MODEL_DIR = "PAIS_MODEL_DIR"
SETTING_REQUEST_TIMEOUT_S = "PAIS_REQUEST_TIMEOUT_S"
SETTING_SAGEMAKER_DEFAULT_TASK = "PAIS_SAGEMAKER_DEFAULT_TASK"
SETTING_API_KEYS = "PAIS_API_KEYS"
# The entry service's name (service.gateway): BentoML takes its TLS settings under it.
ENTRY_SERVICE = "pais"

# --- the entrypoint's own variables: read here and removed before the server starts.
ARTIFACTS_SHA256 = "PAIS_ARTIFACTS_SHA256"
# NAME=<SSM parameter ARN>,... : each NAME is set to the parameter's decrypted value.
SECRETS_FROM_SSM = "PAIS_SECRETS_FROM_SSM"
# <SSM parameter ARN> of a SecureString holding the server's certificate and key (PEM).
TLS_FROM_SSM = "PAIS_TLS_FROM_SSM"

# The digest manifest `push` packs at the root of model.tar.gz: `sha256sum` lines.
MANIFEST_NAME = "pais-artifacts.sha256"


class StartupError(Exception):
    """A reason not to start the server; printed, then the process exits 2."""


def manifest_text(digests: dict[str, str]) -> str:
    """The manifest for {relative path: sha256}, as `sha256sum` writes it (sorted)."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(digests.items()))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_artifacts(model_dir: Path, expected_manifest_sha256: str) -> int:
    """Every file under `model_dir` listed in its manifest with the same sha256, nothing
    missing, nothing extra, and the manifest itself the one the deployment recorded.
    Returns the number of files checked."""
    manifest = model_dir / MANIFEST_NAME
    if not manifest.is_file():
        raise StartupError(
            f"the model artifacts in {model_dir} have no {MANIFEST_NAME}: push them with "
            "`python -m deploy push`, which packs it"
        )
    if file_digest(manifest) != expected_manifest_sha256:
        raise StartupError(
            f"{model_dir}/{MANIFEST_NAME} is not the one this deployment recorded "
            f"({ARTIFACTS_SHA256}={expected_manifest_sha256}): the artifacts in S3 changed after the "
            "deploy; push and deploy again"
        )
    listed: dict[str, str] = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    found = {
        path.relative_to(model_dir).as_posix(): path
        for path in model_dir.rglob("*")
        if path.is_file() and path != manifest
    }
    problems = [f"{name}: missing" for name in sorted(set(listed) - set(found))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(found) - set(listed))]
    problems += [
        f"{name}: sha256 {actual} instead of {listed[name]}"
        for name in sorted(set(found) & set(listed))
        if (actual := file_digest(found[name])) != listed[name]
    ]
    if problems:
        raise StartupError(
            f"the model artifacts in {model_dir} do not match their manifest: " + "; ".join(problems)
        )
    return len(found)


def parse_references(text: str) -> dict[str, str]:
    """`NAME=arn:...:parameter/x,NAME2=...` -> {NAME: ARN}."""
    references = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, arn = item.partition("=")
        if not sep or ":parameter/" not in arn:
            raise StartupError(f"{SECRETS_FROM_SSM}: {item!r} is not NAME=<SSM parameter ARN>")
        references[name] = arn
    return references


def fetch_parameters(arns: list[str]) -> dict[str, str]:
    """{ARN: decrypted value}, read with the container's role (one call per region)."""
    import boto3  # only here: a container without secrets starts without it

    values: dict[str, str] = {}
    by_region: dict[str, list[str]] = {}
    for arn in arns:
        by_region.setdefault(arn.split(":")[3], []).append(arn)
    for region, wanted in by_region.items():
        ssm = boto3.client("ssm", region_name=region)
        for start in range(0, len(wanted), 10):  # GetParameters takes up to 10 names
            names = {"/" + arn.split(":parameter/", 1)[1]: arn for arn in wanted[start : start + 10]}
            try:
                answer = ssm.get_parameters(Names=list(names), WithDecryption=True)
            except Exception as error:  # botocore's errors: no role, no permission, no network
                raise StartupError(
                    f"cannot read secrets from SSM Parameter Store in {region}: {error}"
                ) from None
            if answer.get("InvalidParameters"):
                raise StartupError(
                    f"SSM Parameter Store has no parameter(s) {', '.join(answer['InvalidParameters'])} "
                    f"in {region}: deploy again, which stores them"
                )
            for parameter in answer["Parameters"]:
                values[names[parameter["Name"]]] = parameter["Value"]
    return values


def resolve_secrets(env: dict[str, str]) -> list[str]:
    """Put the secrets and the TLS certificate named in `env` in place; returns what was
    set up (names only, for the log). Removes the entrypoint's own variables from `env`."""
    references = parse_references(env.pop(SECRETS_FROM_SSM, ""))
    tls = env.pop(TLS_FROM_SSM, "")
    if not references and not tls:
        return []
    values = fetch_parameters(list(references.values()) + ([tls] if tls else []))
    done = []
    for name, arn in references.items():
        env[name] = values[arn]
        done.append(name)
    if tls:
        folder = Path(tempfile.mkdtemp(prefix="pais-tls-"))  # 0700
        bundle = folder / "server.pem"
        descriptor = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(values[tls])
        # The bundle holds the certificate and its key: OpenSSL reads each from the blocks
        # of its own kind. BentoML 1.4 takes the API server's TLS from the entry service's
        # configuration (an `api_server.ssl` override is replaced by the service's defaults).
        options = env.get("BENTOML_CONFIG_OPTIONS", "")
        env["BENTOML_CONFIG_OPTIONS"] = (
            f"{options} services.{ENTRY_SERVICE}.ssl.enabled=true "
            f"services.{ENTRY_SERVICE}.ssl.certfile={bundle} services.{ENTRY_SERVICE}.ssl.keyfile={bundle}"
        ).strip()
        done.append("TLS certificate")
    return done


def serve_command(sagemaker: bool, host: str, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `bentoml serve` command line and environment for a mode."""
    env = dict(environ)
    if sagemaker:
        port = env.get("SAGEMAKER_BIND_TO_PORT") or "8080"
        if SETTING_MODEL_DIR not in env and Path(SAGEMAKER_MODEL_DIR).is_dir():
            env[SETTING_MODEL_DIR] = SAGEMAKER_MODEL_DIR
        if env.get("SAGEMAKER_BATCH", "").lower() == "true":
            # A Batch Transform mini-batch is one request: give it SageMaker's longest
            # invocation timeout (3600 s), not a REST call's.
            env.setdefault(SETTING_REQUEST_TIMEOUT_S, "3600")
    else:
        port = env.get("PORT") or "3000"
    target = env.get("BENTO_PATH") or "service.gateway:PAIS"
    # the bentoml of this interpreter's environment, whether or not it is on PATH
    beside = Path(sys.executable).parent / "bentoml"
    bentoml = str(beside) if beside.exists() else "bentoml"
    return [bentoml, "serve", target, "--host", host, "--port", port], env


def prepare(env: dict[str, str]) -> list[str]:
    """The checks and set-up before the server starts, in `env`; what was done, for the log."""
    done = []
    expected = env.pop(ARTIFACTS_SHA256, "")
    if expected:
        model_dir = env.get(SETTING_MODEL_DIR)
        if not model_dir or not Path(model_dir).is_dir():
            raise StartupError(f"{ARTIFACTS_SHA256} is set but there are no model artifacts to check")
        done.append(f"{verify_artifacts(Path(model_dir), expected)} artifact files match their sha256")
    return done + resolve_secrets(env)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in ("serve",) and not argv[0].startswith("-"):
        os.execvp(argv[0], argv)  # a debugging command: bash, python, ...
    parser = argparse.ArgumentParser(prog="python -m deploy.entrypoint", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["serve"], help="serve: SageMaker's contract")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    args = parser.parse_args(argv)
    command, env = serve_command(args.mode == "serve", args.host, dict(os.environ))
    try:
        for step in prepare(env):
            print(f"pais entrypoint: {step}", flush=True)
    except StartupError as error:
        print(f"pais entrypoint: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    # the service's sources: the bento's src/ in an image, the working directory on the host
    sources = Path(env["BENTO_PATH"]) / "src" if env.get("BENTO_PATH") else Path.cwd()
    checked = subprocess.run([sys.executable, "-m", "service.preflight"], cwd=sources, env=env)
    if checked.returncode != 0:
        sys.exit(checked.returncode)
    print(f"pais entrypoint: {' '.join(command)}", flush=True)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
