"""PAIS entry service: every served task's routes on one port.

Built from the task declarations (service/tasks/): each served task with a runtime gets
a runner, either its model service (service.model_service, composed with
bentoml.depends, so BentoML starts it) or the runtime inside this process when its
section says PAIS_<TASK>_SERVE_IN=entry. The routes are PAIS's own ASGI app
(service.app), installed in front of BentoML's, which keeps /livez, /readyz and /metrics.

Serve it with `bentoml serve service.gateway:PAIS` (what `make serve` does).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import bentoml

from .app import GetRoute, PaisApp
from .bentoml_schema import schema as bentoml_schema
from .context import Served
from .errors import RequestError
from .http_io import send_error
from .middleware import ApiKeyMiddleware, ConcurrencyLimitMiddleware
from .model_service import ENTRY_SERVICE, model_service, worker_device
from .model_store import load_task_runtime
from .openapi import ModelsAnswer, document
from .playground import playground_routes
from .runners import InlineRunner, RemoteRunner
from .sagemaker import SageMakerRoutes
from .settings import Settings, get_settings
from .tasks import TASKS

settings = get_settings()
SERVED = settings.served_tasks()


def remote_tasks(settings: Settings) -> list[str]:
    """Served tasks whose runtime runs in a model service of its own."""
    return [
        name
        for name in settings.served_tasks()
        if TASKS.get(name).runtime is not None and settings.section(name).serve_in == "model-service"
    ]


def dependency_attribute(task: str) -> str:
    return f"{task}_model_service"


class Entry:
    """One entry worker: its runners, and the app that serves the routes with them."""

    def __init__(self) -> None:
        runners: dict[str, Any] = {}
        for name in SERVED:
            task = TASKS.get(name)
            if task.runtime is None:
                continue
            section = settings.section(name)
            if section.serve_in == "model-service":
                runners[name] = RemoteRunner(
                    name,
                    getattr(self, dependency_attribute(name)),
                    section.max_batch_size,
                    section.request_chunk,
                )
            else:
                runner = inline_runner(task, section, lambda task=task: load_inline(task, settings))
                runner.start()
                runners[name] = runner
        self.served = Served(settings, TASKS, runners)
        FRONT.start(self.served)

    async def __is_ready__(self) -> bool:
        return await self.served.ready()

    @bentoml.on_shutdown
    def close_runtimes(self) -> None:
        """Entry-served runtimes own processes (apertium's pipelines): stop them with the
        worker instead of leaving them to notice a closed pipe."""
        for runner in self.served.runners.values():
            runner.close()


def inline_runner(task: Any, section: Any, load: Callable[[], Any]) -> InlineRunner:
    """The runner for a task served in the entry process, batching as its settings say,
    its runtime made by `load` (in the runner's thread, once)."""
    cost = task.batch_cost
    return InlineRunner(
        task.name,
        load,
        section.max_batch_size,
        task.reads,
        lanes=task.lanes,
        cost=cost.cost if cost else None,
        max_cost=getattr(section, cost.limit) if cost else None,
    )


def load_inline(task: Any, settings: Settings) -> Any:
    """An entry-served runtime, with torch held to one intra-op thread: these models are
    light, and idle intra-op threads spinning on this worker's cores cost every request
    here more than they win (a /recommend went from 1.7 to 17 ms in-process with two)."""
    # each entry worker takes the GPUs in turn, as model-service workers do
    device = worker_device(settings.device, bentoml.server_context.worker_index or 1)
    runtime = load_task_runtime(task, settings, device=device)
    import sys

    if "torch" in sys.modules:
        # another runtime may be importing torch in its own loading thread right now:
        # `import` waits for that import to finish, sys.modules would hand over a half one
        import torch

        torch.set_num_threads(1)
    return runtime


def build_app(served: Served, inner: Any) -> PaisApp:
    """PaisApp with the routes every server has: /models, /stats, /docs.json, SageMaker's."""
    openapi: dict[str, Any] = {}
    bentoml_routes = bentoml_schema(served.tasks)

    async def models() -> ModelsAnswer:
        cards = await asyncio.gather(*(runner.cards(fresh=True) for runner in served.runners.values()))
        return ModelsAnswer(models=[card for group in cards for card in group])

    async def stats() -> dict[str, Any]:
        async def one(runner: Any) -> Any:
            try:
                return await runner.batch_stats()
            except RequestError as error:
                return {"error": error.message}

        answers = await asyncio.gather(*(one(runner) for runner in served.runners.values()))
        return dict(zip(served.runners, answers, strict=True))

    async def docs() -> dict[str, Any]:
        """Built once the models are loaded, with the values they accept (labels,
        languages); until then, without them, and not kept."""
        if openapi:
            return openapi
        if not await served.ready():
            return document(served.tasks, served.settings)
        choices = {}
        for task in served.tasks:
            for op in task.operations:
                if op.choices is not None:
                    choices[op.name] = await op.choices(served.context(task))
        openapi.update(document(served.tasks, served.settings, choices))
        return openapi

    async def schema_json() -> dict[str, Any]:
        return bentoml_routes

    routes: dict[tuple[str, str], Any] = {
        ("GET", "/models"): GetRoute(models, ModelsAnswer),
        ("GET", "/stats"): GetRoute(stats),
        ("GET", "/docs.json"): GetRoute(docs),
        ("GET", "/schema.json"): GetRoute(schema_json),
        **SageMakerRoutes(served).routes(),
        **playground_routes(),
    }
    return PaisApp(inner, served, routes)


class Front:
    """The ASGI middleware BentoML installs; it hands requests to the PaisApp built when
    the service instance starts (the runners need the instance's dependency proxies)."""

    app: PaisApp | None = None

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        Front.inner_app = inner

    @classmethod
    def start(cls, served: Served) -> None:
        cls.app = build_app(served, cls.inner_app)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.app is None:
            if scope["type"] == "http" and scope["path"] not in ("/livez", "/healthz", "/readyz"):
                return await send_error(send, RequestError(503, "the service is starting; retry shortly"))
            return await self.inner(scope, receive, send)
        await self.app(scope, receive, send)


FRONT = Front


def guards(settings: Settings) -> list[tuple[type, dict[str, Any]]]:
    """The middleware in front of PAIS's routes, outermost first, with its options: load
    shedding (per entry worker), then API keys."""
    return [
        (ConcurrencyLimitMiddleware, {"limit": math.ceil(settings.max_concurrency / settings.entry_workers)}),
        (ApiKeyMiddleware, {"keys": settings.api_key_set}),
    ]


# No BentoML max_concurrency here: its limiter sits outside the service's middleware and
# would refuse SageMaker's /ping under load; ConcurrencyLimitMiddleware exempts health
# checks. BentoML's own dependency probe in /readyz lets a timeout escape while a model
# service is still loading, and its timeout middleware then holds that request (and
# shutdown) for the whole request timeout: Entry.__is_ready__ probes the runners instead.
PAIS = bentoml.service(
    name=ENTRY_SERVICE,
    workers=settings.entry_workers,
    traffic={"timeout": settings.request_timeout_s + 5},
    runner_probe={"enabled": False},
)(
    type(
        "PAIS",
        (Entry,),
        {
            "__module__": __name__,
            "__qualname__": "PAIS",
            "__doc__": "The PAIS entry service.",
            **{
                dependency_attribute(name): bentoml.depends(model_service(TASKS.get(name), settings))
                for name in remote_tasks(settings)
            },
        },
    )
)
for guard, options in guards(settings):
    PAIS.add_asgi_middleware(guard, **options)
PAIS.add_asgi_middleware(Front)
