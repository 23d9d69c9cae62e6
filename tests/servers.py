"""Real servers for tests: `bentoml serve` (or any command) as a subprocess on a free
127.0.0.1 port, and moto's S3/AWS server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(**overrides: str) -> dict[str, str]:
    """The environment a test server runs with: the project's model store, offline hubs."""
    env = {
        **os.environ,
        "BENTOML_HOME": os.environ.get("BENTOML_HOME", str(REPO / ".bentoml")),
        "BENTOML_DO_NOT_TRACK": "true",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    env.update(overrides)
    return env


def bentoml_home_beside_the_project(home: Path) -> Path:
    """`home` made a BentoML home holding the project's models (linked: read, never
    written) with room for more, for tests that store models of their own."""
    (home / "models").mkdir()
    for model in (REPO / ".bentoml" / "models").iterdir():
        (home / "models" / model.name).symlink_to(model)
    return home


@contextlib.contextmanager
def running_server(
    command: list[str], port: int, env: dict[str, str], ready_path: str = "/readyz", timeout_s: float = 240
) -> Iterator[str]:
    """Start `command`, wait until GET ready_path answers 200, yield the base URL, then stop
    it with SIGTERM (SIGKILL after 30 s). On a failed start the server's log is in the error."""
    url = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile(prefix="pais-server-", suffix=".log") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_ready(process, url + ready_path, log.name, timeout_s)
            yield url
        finally:
            stop(process)


def _wait_ready(process: subprocess.Popen, ready_url: str, log_path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready after {timeout_s} s:\n{_tail(log_path)}")
        time.sleep(0.5)


def stop(process: subprocess.Popen, grace_s: float = 30) -> int:
    """SIGTERM the server, SIGKILL it after `grace_s`, then kill any of its workers still
    running: BentoML's workers run in sessions of their own, out of reach of a process group
    signal, and a hung one would outlive its killed arbiter, port and all."""
    if process.poll() is None:
        workers = _descendants(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.kill()
    return process.returncode


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def bentoml_serve(target: str, port: int) -> list[str]:
    return [str(BIN / "bentoml"), "serve", target, "--host", "127.0.0.1", "--port", str(port)]


def _tail(path: str, lines: int = 60) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
