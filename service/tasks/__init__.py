"""The task registry: every task PAIS can serve, one declaration module each.

Built-in tasks are the modules of this package, in alphabetical order: adding a task is
adding its module here (no list to extend). PAIS_TASK_MODULES adds more (a plugin's own
declaration, or a test's). Modules are imported on first use, in order; each defines
`TASK` (service.task.Task). Everything that lists tasks (settings, routes, model services,
OpenAPI, bentofile check, docs) asks this registry.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable

from ..task import Operation, Task

BUILTIN = tuple(
    f"{__name__}.{module.name}" for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
)


class TaskRegistry:
    def __init__(self, modules: Iterable[str]):
        self.modules = tuple(dict.fromkeys(m.strip() for m in modules if m.strip()))
        self._tasks: dict[str, Task] | None = None

    def _load(self) -> dict[str, Task]:
        if self._tasks is None:
            tasks: dict[str, Task] = {}
            for module in self.modules:
                task = getattr(importlib.import_module(module), "TASK", None)
                if not isinstance(task, Task):
                    raise ValueError(f"task module {module} defines no TASK (a service.task.Task)")
                if task.name in tasks:
                    raise ValueError(f"task {task.name!r} is declared twice ({module})")
                tasks[task.name] = task
            self._tasks = tasks
        return self._tasks

    def all(self) -> list[Task]:
        return list(self._load().values())

    def names(self) -> list[str]:
        return list(self._load())

    def get(self, name: str) -> Task:
        try:
            return self._load()[name]
        except KeyError:
            raise KeyError(f"unknown task {name!r}; tasks: {', '.join(self._load())}") from None

    def served(self, setting: str) -> tuple[str, ...]:
        """The tasks a PAIS_TASKS value names, with those they require, in registry order."""
        names = {name.strip() for name in setting.split(",") if name.strip()}
        known = self._load()
        if names == {"all"}:
            return tuple(known)
        unknown = names - set(known)
        if unknown or not names:
            raise ValueError(
                f"PAIS_TASKS={setting!r}: unknown task(s) {sorted(unknown)}; "
                f"accepted: {', '.join(known)} or all"
            )
        wanted: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name not in wanted:
                wanted.add(name)
                pending.extend(known[name].requires)
        return tuple(name for name in known if name in wanted)

    def operations(self, tasks: Iterable[str] | None = None) -> list[tuple[Task, Operation]]:
        chosen = self.names() if tasks is None else list(tasks)
        return [(self.get(name), op) for name in chosen for op in self.get(name).operations]


def registry_from_env(environ: dict[str, str] | None = None) -> TaskRegistry:
    env = os.environ if environ is None else environ
    return TaskRegistry([*BUILTIN, *env.get("PAIS_TASK_MODULES", "").split(",")])


TASKS = registry_from_env()
