"""What benchmarks/gpu.py reads about a running server and the machine: the GPUs
(nvidia-smi), each BentoML worker process (its service, worker id, CUDA_VISIBLE_DEVICES,
whether torch is loaded in it) and the GPU memory each one holds.

nvidia-smi lists compute processes by PID; they are matched to the server's workers,
whose command lines carry `--service-name <name> --worker-id <n>` (BentoML 1.4). Where no
PID matches (a PID namespace between the container and the driver) the memory is reported
as unmapped, not guessed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from typing import Any

import psutil

NO_GPU = "n/a (no GPU)"


def nvidia_smi(query: str, kind: str = "--query-gpu") -> list[list[str]] | None:
    """Rows of `nvidia-smi <kind>=<query> --format=csv,noheader,nounits`; None without
    nvidia-smi or when it fails."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", f"{kind}={query}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [[cell.strip() for cell in line.split(",")] for line in done.stdout.splitlines() if line.strip()]


def gpus() -> list[dict[str, Any]]:
    rows = nvidia_smi("index,uuid,name,memory.total,memory.used,driver_version") or []
    return [
        {
            "index": int(row[0]),
            "uuid": row[1],
            "name": row[2],
            "memory_total_mib": _number(row[3]),
            "memory_used_mib": _number(row[4]),
            "driver": row[5],
        }
        for row in rows
        if len(row) >= 6
    ]


def compute_apps() -> dict[int, dict[str, Any]]:
    """{pid: {"gpu_uuid", "used_memory_mib"}} of the processes holding GPU memory."""
    rows = nvidia_smi("pid,gpu_uuid,used_memory", kind="--query-compute-apps") or []
    apps: dict[int, dict[str, Any]] = {}
    for row in rows:
        if len(row) >= 3 and row[0].isdigit():
            apps[int(row[0])] = {"gpu_uuid": row[1], "used_memory_mib": _number(row[2])}
    return apps


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _argument(cmdline: list[str], flag: str) -> str | None:
    for index, part in enumerate(cmdline[:-1]):
        if part == flag:
            return cmdline[index + 1]
    return None


def server_workers(root_pid: int) -> list[dict[str, Any]]:
    """The BentoML worker processes under `root_pid`: pid, service, worker id,
    CUDA_VISIBLE_DEVICES, and whether libtorch is mapped into the process."""
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return []
    workers = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            cmdline = child.cmdline()
            service = _argument(cmdline, "--service-name")
            if service is None:
                continue
            try:
                visible = child.environ().get("CUDA_VISIBLE_DEVICES")
            except psutil.Error:
                visible = None
            workers.append(
                {
                    "pid": child.pid,
                    "service": service,
                    "worker_id": _argument(cmdline, "--worker-id"),
                    "cuda_visible_devices": visible,
                    "torch_loaded": _has_torch(child),
                }
            )
    return sorted(workers, key=lambda w: (w["service"], str(w["worker_id"])))


def _has_torch(process: psutil.Process) -> bool | None:
    try:
        return any("libtorch" in m.path for m in process.memory_maps(grouped=True))
    except (psutil.Error, OSError):
        return None


def memory_by_service(workers: list[dict[str, Any]], own_pid: int | None = None) -> dict[str, Any]:
    """Per service: each worker's GPU memory and GPU, and the service's total; NO_GPU
    without nvidia-smi. Adds "gpu" and "gpu_memory_mib" to each worker dict. `own_pid`
    (the benchmark, holding the raw phases' CUDA context) is reported on its own line."""
    table = gpus()
    if not table:
        for worker in workers:
            worker.update(gpu=NO_GPU, gpu_memory_mib=NO_GPU)
        return {service: NO_GPU for service in sorted({w["service"] for w in workers})}
    index_of = {gpu["uuid"]: gpu["index"] for gpu in table}
    apps = compute_apps()
    services: dict[str, Any] = {}
    for worker in workers:
        app = apps.pop(worker["pid"], None)
        worker["gpu"] = index_of.get(app["gpu_uuid"]) if app else None
        worker["gpu_memory_mib"] = app["used_memory_mib"] if app else 0.0
        services[worker["service"]] = services.get(worker["service"], 0.0) + (worker["gpu_memory_mib"] or 0.0)
    if own_pid in apps:
        services["benchmark process"] = apps.pop(own_pid)["used_memory_mib"]
    if apps:  # GPU processes that are no worker of this server (or PIDs from another namespace)
        services["unmapped"] = {
            "pids": sorted(apps),
            "used_memory_mib": sum(app["used_memory_mib"] or 0.0 for app in apps.values()),
        }
    return services
