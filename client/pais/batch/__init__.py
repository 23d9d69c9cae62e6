"""Batch jobs: run one task over a folder, a glob, a JSONL file or an S3 prefix, writing
one JSON line per record to a JSONL file or an S3 prefix; rerunning resumes.

    from pais.batch import run_batch
    summary = run_batch("classify", "photos/", "labels.jsonl", url="http://gpu-box:3000")

The command line does the same: `pais batch classify photos/ --out labels.jsonl`.
"""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

from ..client import AsyncClient
from ..errors import PaisError
from ..operations import operations
from ..retry import RetryPolicy
from .engine import BatchJob, JobAborted
from .progress import BatchSummary
from .records import InputError, open_input
from .s3 import is_s3_uri
from .sinks import LocalSink, S3Sink, Sink
from .tasks import TASKS, Task, get_task, task_from_operation

DEFAULT_CONCURRENCY = 8
SAGEMAKER_BATCH_SIZE = 4  # InvokeEndpoint takes at most 6 MB per request


async def run_batch_async(
    task: str,
    input: str,
    output: str,
    *,
    url: str | None = None,
    api_key: str | None = None,
    sagemaker_endpoint: str | None = None,
    region: str | None = None,
    options: dict[str, Any] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    batch_size: int | None = None,
    retry_failed: bool = False,
    timeout_s: float | None = None,
    retry: RetryPolicy | None = None,
    progress: bool | TextIO = True,
    count_total: bool = True,
    fsync_interval_s: float = 1.0,
    state_dir: str | None = None,
    part_records: int = 1000,
) -> BatchSummary:
    """Run (or resume) a batch job; see `run_batch`."""
    client_options: dict[str, Any] = {"retry": retry}
    if timeout_s is not None:
        client_options["timeout"] = timeout_s
    if sagemaker_endpoint:
        from ..sagemaker import SageMakerTransport

        transport: Any = SageMakerTransport(
            sagemaker_endpoint,
            region=region,
            retry=retry,
            max_workers=concurrency,
            timeout_s=timeout_s or 70.0,
        )
        spec = get_task(task)  # SageMaker serves no OpenAPI document: the typed tasks only
        batch_size = batch_size or min(spec.default_batch_size, SAGEMAKER_BATCH_SIZE)
    else:
        transport = AsyncClient(url, api_key=api_key, max_connections=concurrency, **client_options)
    try:
        if not sagemaker_endpoint:
            spec = await _server_task(transport, task)
        source = open_input(input, spec.kind)
        sink: Sink
        if is_s3_uri(output):
            described = {"task": task, "input": input, "options": options or {}}
            sink = S3Sink(output, state_dir, fsync_interval_s, part_records, job=described)
        else:
            sink = LocalSink(output, fsync_interval_s)
        job = BatchJob(
            spec,
            source,
            sink,
            transport,
            options=options,
            concurrency=concurrency,
            batch_size=batch_size,
            retry_failed=retry_failed,
            progress=progress,
            count_total=count_total,
        )
        return await job.run()
    finally:
        closing = transport.close()
        if asyncio.iscoroutine(closing):
            await closing


def run_batch(task: str, input: str, output: str, **kwargs: Any) -> BatchSummary:
    """Run `task` (classify, detect, detect_annotated, analyze_video, translate, synthesize,
    recommend, similar_items) over `input` and write to `output`.

    input: a folder (recursively), a glob ("photos/**/*.jpg"), a JSONL file (one record per
    line with an "id"), an s3://bucket/prefix/ or an s3://bucket/records.jsonl.
    output: a .jsonl file (file answers in <name>.files/ beside it) or s3://bucket/prefix/.
    Keyword options: url / api_key (or PAIS_URL / PAIS_API_KEY), or sagemaker_endpoint (+
    region); options (the task's own, e.g. {"top_k": 3}); concurrency (requests in flight,
    default 8); batch_size (records per request for classify/detect/translate: 16/16/32);
    retry_failed (also redo records that failed with a 4xx); progress (stderr line, or a
    stream); fsync_interval_s; state_dir and part_records (S3 outputs).
    Rerunning the same job skips the records already in the output.
    """
    return asyncio.run(run_batch_async(task, input, output, **kwargs))


async def _server_task(client: AsyncClient, name: str) -> Task:
    """The task `name` as this server declares it: a typed task checked against the
    server's GET /docs.json (failing fast, before reading any input, when the server lacks
    the endpoint), or any other operation with a batch format in that document."""
    try:
        document = await client.openapi()
    except PaisError:
        return get_task(name)  # an older server or a proxy without /docs.json: the requests will tell
    paths = document.get("paths", {}) if isinstance(document, dict) else {}
    if name in TASKS:
        spec = TASKS[name]
        if paths and spec.path not in paths:
            raise JobAborted(f"{client.url} has no {spec.path} endpoint (not in its GET /docs.json)")
        return spec
    declared = operations(document) if isinstance(document, dict) else {}
    if name not in declared:
        known = sorted({*TASKS, *(n for n, op in declared.items() if op.batch)})
        raise JobAborted(f"{client.url} has no operation {name!r}; tasks: {', '.join(known)}")
    try:
        return task_from_operation(declared[name])
    except ValueError as error:
        raise JobAborted(str(error)) from None


__all__ = ["TASKS", "BatchSummary", "InputError", "JobAborted", "run_batch", "run_batch_async"]
