"""The container's entrypoint (also run on the host by `make serve-sagemaker`).

    python -m deploy.entrypoint serve [--host H]   SageMaker: port $SAGEMAKER_BIND_TO_PORT or 8080,
                                                  model artifacts from /opt/ml/model when present
    python -m deploy.entrypoint [--host H]         plain REST server on $PORT or 3000
    python -m deploy.entrypoint <command ...>      runs the command (e.g. bash) for debugging

It first runs the service's preflight checks (settings, device) and exits 2 if they fail:
BentoML would restart a failing model worker forever, and SageMaker would only notice at
its health-check timeout. Then it execs `bentoml serve`, so the serving process is the
container's PID 1 and receives SIGTERM directly (SageMaker and `docker stop` send it, then
SIGKILL after 30 s). Inside a bento image it serves the bento at $BENTO_PATH; on the host,
service.gateway:PAIS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def serve_command(sagemaker: bool, host: str, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `bentoml serve` command line and environment for a mode."""
    env = dict(environ)
    if sagemaker:
        port = env.get("SAGEMAKER_BIND_TO_PORT") or "8080"
        if "PAIS_MODEL_DIR" not in env and Path(SAGEMAKER_MODEL_DIR).is_dir():
            env["PAIS_MODEL_DIR"] = SAGEMAKER_MODEL_DIR
        if env.get("SAGEMAKER_BATCH", "").lower() == "true":
            # A Batch Transform mini-batch is one request: give it SageMaker's longest
            # invocation timeout (3600 s), not a REST call's.
            env.setdefault("PAIS_REQUEST_TIMEOUT_S", "3600")
    else:
        port = env.get("PORT") or "3000"
    target = env.get("BENTO_PATH") or "service.gateway:PAIS"
    # the bentoml of this interpreter's environment, whether or not it is on PATH
    beside = Path(sys.executable).parent / "bentoml"
    bentoml = str(beside) if beside.exists() else "bentoml"
    return [bentoml, "serve", target, "--host", host, "--port", port], env


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in ("serve",) and not argv[0].startswith("-"):
        os.execvp(argv[0], argv)  # a debugging command: bash, python, ...
    parser = argparse.ArgumentParser(prog="python -m deploy.entrypoint", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["serve"], help="serve: SageMaker's contract")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    args = parser.parse_args(argv)
    command, env = serve_command(args.mode == "serve", args.host, dict(os.environ))
    # the service's sources: the bento's src/ in an image, the working directory on the host
    sources = Path(env["BENTO_PATH"]) / "src" if env.get("BENTO_PATH") else Path.cwd()
    checked = subprocess.run([sys.executable, "-m", "service.preflight"], cwd=sources, env=env)
    if checked.returncode != 0:
        sys.exit(checked.returncode)
    print(f"pais entrypoint: {' '.join(command)}", flush=True)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
