"""What a handler works with: its settings and the runners of the tasks it uses.

`Served` is one entry worker's view of PAIS: the settings, the tasks it serves and a
runner per task with a runtime. A handler gets a `Context` for its task and request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .settings import Settings
from .task import Task
from .tasks import TaskRegistry


class Runner(Protocol):
    task: str
    where: str

    async def predict(self, items: Sequence[Any]) -> list[Any]: ...
    async def cards(self, fresh: bool = False) -> list[dict[str, Any]]: ...
    async def read(self, name: str) -> Any: ...
    async def ready(self) -> bool: ...
    async def batch_stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class Served:
    def __init__(self, settings: Settings, registry: TaskRegistry, runners: dict[str, Runner]):
        self.settings = settings
        self.registry = registry
        self.tasks: tuple[Task, ...] = tuple(registry.get(name) for name in settings.served_tasks(registry))
        self.runners = runners

    async def ready(self) -> bool:
        answers = await asyncio.gather(*(runner.ready() for runner in self.runners.values()))
        return all(answers)

    def context(self, task: Task, timeout_s: float | None = None) -> Context:
        timeout = self.settings.request_timeout_s if timeout_s is None else timeout_s
        return Context(self, task, time.monotonic() + timeout)


@dataclass
class Context:
    served: Served
    task: Task
    deadline: float  # time.monotonic() by which the request must be answered

    @property
    def settings(self) -> Settings:
        return self.served.settings

    @property
    def section(self) -> Any:
        """This task's settings section."""
        return self.settings.section(self.task.name)

    def runner(self, task: str | None = None) -> Runner:
        name = task or self.task.name
        return self.served.runners[name]

    async def predict(self, items: Sequence[Any], task: str | None = None) -> list[Any]:
        """One result or ItemError per item, in order (batched with other requests')."""
        return await self.runner(task).predict(items)

    async def cards(self, task: str | None = None) -> list[dict[str, Any]]:
        return await self.runner(task).cards()

    async def read(self, name: str, task: str | None = None) -> Any:
        return await self.runner(task).read(name)

    def remaining_s(self) -> float:
        return max(0.0, self.deadline - time.monotonic())
