"""Every PAIS setting, read from the environment in one place and checked at start-up.

Global settings are `PAIS_<FIELD>`; each task's section (declared in service/tasks/) is
`PAIS_<TASK>_<FIELD>`. A value that does not parse, a field a section does not have
(`PAIS_TRANSLATION_MAX_TEXT_CHAR`) or a name from before the sections existed fails
loudly at start-up with what to write instead, rather than serving with a silent default.

`python -m service.settings` prints the table that docs/operations.md carries (a test
keeps the two in step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from .config import MIB, ModelSettings, TaskSettings, setting
from .tasks import TASKS, TaskRegistry

PREFIX = "PAIS_"

# Names of the flat settings that per-task sections replaced: a clear error, not a silent default.
RENAMED = {
    "PAIS_MAX_IMAGES_PER_REQUEST": "PAIS_CLASSIFICATION_MAX_IMAGES and PAIS_DETECTION_MAX_IMAGES",
    "PAIS_GATEWAY_WORKERS": "PAIS_ENTRY_WORKERS",
    "PAIS_MAX_BATCH_SIZE": "PAIS_CLASSIFICATION_MAX_BATCH_SIZE and PAIS_DETECTION_MAX_BATCH_SIZE",
    "PAIS_MAX_VIDEO_BYTES": "PAIS_VIDEO_MAX_BYTES",
    "PAIS_MAX_VIDEO_DURATION_S": "PAIS_VIDEO_MAX_DURATION_S",
    "PAIS_MAX_VIDEO_FRAMES": "PAIS_VIDEO_MAX_FRAMES",
    "PAIS_MAX_TEXTS_PER_REQUEST": "PAIS_TRANSLATION_MAX_TEXTS",
    "PAIS_MAX_TEXT_CHARS": "PAIS_TRANSLATION_MAX_TEXT_CHARS",
    "PAIS_MAX_TRANSLATE_CHARS": "PAIS_TRANSLATION_MAX_REQUEST_CHARS",
    "PAIS_MAX_SPEECH_CHARS": "PAIS_SPEECH_MAX_CHARS",
    "PAIS_RECOMMENDATION_BATCH_SIZE": "PAIS_RECOMMENDATION_MAX_BATCH_SIZE",
    "PAIS_MAX_RECOMMENDATIONS": "PAIS_RECOMMENDATION_MAX_K",
    "PAIS_MAX_LIKED_ITEMS": "PAIS_RECOMMENDATION_MAX_LIKED_ITEMS",
    "PAIS_MAX_QUERY_CHARS": "PAIS_RECOMMENDATION_MAX_QUERY_CHARS",
}


@dataclass(frozen=True)
class Settings:
    """The settings every task shares (PAIS_<FIELD>), and each served task's section."""

    device: str = setting(
        "auto",
        "Device for the models: auto (CUDA when present), cpu, cuda or cuda:N. Model-service "
        "workers take the GPUs in turn; several model services share one GPU.",
    )
    dtype: str = setting(
        "auto",
        "Compute dtype: auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16 (half: faster, less exact).",
    )
    tasks: str = setting(
        "all",
        "Tasks this server serves, comma-separated, or all. Fewer tasks start faster and use "
        "less memory (all of them hold ~4 GB); a task also starts the tasks it builds on "
        "(video: detection and classification).",
    )
    api_keys: str = setting(
        "",
        "Comma-separated API keys; when set, every request but health checks (/livez, /readyz, "
        "/ping) needs `Authorization: Bearer <key>` or `X-API-Key`. Not for SageMaker "
        "endpoints, which authenticate callers with IAM.",
    )
    entry_workers: int = setting(
        1,
        "Worker processes of the HTTP entry service (parsing, validation, entry-served models). "
        "More serve more light requests at once; each holds the entry-served models.",
        1,
    )
    request_timeout_s: int = setting(
        120, "Longest a request may run; past it the work is stopped and the answer is a 504.", 1
    )
    batch_max_latency_ms: int = setting(
        30_000,
        "A model service's batching budget: work that cannot start within it is refused with "
        "503 (small values refuse bursts that would have finished in time).",
        1,
    )
    max_concurrency: int = setting(
        256,
        "Requests in flight before new ones get 429 (health checks exempt), shared evenly by the "
        "entry workers.",
        1,
    )
    max_request_bytes: int = setting(
        64 * MIB, "Largest request body accepted, in bytes (413 beyond); video has its own limit.", 1
    )
    max_image_pixels: int = setting(
        50_000_000,
        "Largest image accepted, in pixels (width x height), checked on the header before any "
        "decoding (PIL itself refuses ~179 MP).",
        1,
    )
    max_request_pixels: int = setting(
        200_000_000,
        "Most pixels of all images of one request together, checked on the headers: bounds the "
        "decoding work one request may ask for.",
        1,
    )
    max_json_depth: int = setting(
        32, "Deepest nesting accepted in a JSON body (requests nest 3 levels at most).", 2
    )
    cache_dir: str = setting("", "Where s3:// model sources are downloaded to (unset: ~/.cache/pais).")
    model_dir: str = setting(
        "", "Directory of model artifacts, one sub-directory per task (the container sets /opt/ml/model)."
    )
    task_modules: str = setting(
        "",
        "Extra task declarations to serve beside the built-in ones: comma-separated module names, "
        "each defining TASK (see docs/design.md, Adding a task).",
    )
    sagemaker_default_task: str = setting(
        "",
        "Operation of a SageMaker /invocations call whose custom attributes name none "
        "(unset: classify, or the first operation served).",
    )
    sections: dict[str, TaskSettings] | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, registry: TaskRegistry | None = None
    ) -> Settings:
        environ = os.environ if environ is None else environ
        registry = registry or TASKS
        _refuse_renamed(environ, registry)
        values = read_fields(cls, PREFIX, environ)
        sections = {
            task.name: task.settings(**read_fields(task.settings, section_prefix(task.name), environ))
            for task in registry.all()
        }
        settings = cls(**values, sections=sections)
        settings.check_served(registry)
        return settings

    def check_served(self, registry: TaskRegistry) -> None:
        """PAIS_TASKS names known tasks, and PAIS_SAGEMAKER_DEFAULT_TASK an operation they
        serve: checked when settings are read, so `bentoml serve` and the container's
        preflight fail at once instead of every worker failing at start-up, forever."""
        served = self.served_tasks(registry)
        default = self.sagemaker_default_task
        operations = [op.name for name in served for op in registry.get(name).operations]
        if default and default not in operations:
            raise ValueError(
                f"{PREFIX}SAGEMAKER_DEFAULT_TASK={default!r} is not an operation of the tasks served "
                f"({', '.join(served)}); operations: {', '.join(operations)}"
            )

    def __post_init__(self) -> None:
        if self.api_keys.strip() and not self.api_key_set:
            raise ValueError(f"{PREFIX}API_KEYS is set but holds no key; unset it or list keys")
        if self.sections is None:
            object.__setattr__(self, "sections", {task.name: task.settings() for task in TASKS.all()})

    def section(self, task: str) -> Any:
        """The settings section of `task` (a subclass of TaskSettings)."""
        assert self.sections is not None
        return self.sections[task]

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    def served_tasks(self, registry: TaskRegistry | None = None) -> tuple[str, ...]:
        """PAIS_TASKS with the tasks they build on, in the registry's order."""
        return (registry or TASKS).served(self.tasks)


def section_prefix(task: str) -> str:
    return f"{PREFIX}{task.upper()}_"


def read_fields(cls: type, prefix: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of dataclass `cls` set in `environ` as <prefix><FIELD>, parsed."""
    values: dict[str, Any] = {}
    for spec in fields(cls):
        if spec.name == "sections":
            continue
        raw = environ.get(prefix + spec.name.upper())
        if raw is None or raw.strip() == "":
            continue
        values[spec.name] = _parse(spec, prefix + spec.name.upper(), raw)
    return values


def _refuse_renamed(environ: Mapping[str, str], registry: TaskRegistry) -> None:
    problems = []
    for name, new in RENAMED.items():
        if new and environ.get(name, "").strip():
            problems.append(f"{name} is now {new}")
    for task in registry.all():
        prefix = section_prefix(task.name)
        known = {prefix + spec.name.upper() for spec in fields(task.settings)}
        for name in environ:
            if name.startswith(prefix) and name not in known and environ[name].strip():
                accepted = ", ".join(sorted(known))
                problems.append(f"{name} is not a setting of task {task.name}; its settings: {accepted}")
    if problems:
        raise ValueError("; ".join(problems))


def _parse(spec: Any, name: str, raw: str) -> Any:
    kind = spec.type if isinstance(spec.type, str) else spec.type.__name__
    if kind == "bool":
        value = raw.strip().lower()
        if value not in _BOOLEANS:
            raise ValueError(f"{name}={raw!r} is not a boolean; use one of {', '.join(_BOOLEANS)}")
        return _BOOLEANS[value]
    if kind == "int":
        try:
            number = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not an integer") from None
        minimum = spec.metadata.get("minimum")
        if minimum is not None and number < minimum:
            raise ValueError(f"{name}={number} is below its minimum {minimum}")
        return number
    value = raw.strip()
    choices = spec.metadata.get("choices")
    if choices and value not in choices:
        raise ValueError(f"{name}={value!r}: accepted values are {', '.join(choices)}")
    return value


_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def markdown_table(registry: TaskRegistry | None = None) -> str:
    """Every setting with its default and help: the global ones, then each task's section."""
    registry = registry or TASKS
    lines = ["| variable | default | what it does, and the trade-off |", "| --- | --- | --- |"]

    def rows(cls: type, prefix: str) -> None:
        for spec in fields(cls):
            if spec.name == "sections":
                continue
            default = spec.default if spec.default is not MISSING else ""
            shown = f"`{default}`" if default != "" else "(unset)"
            lines.append(f"| `{prefix}{spec.name.upper()}` | {shown} | {spec.metadata['help']} |")

    rows(Settings, PREFIX)
    for task in registry.all():
        rows(task.settings, section_prefix(task.name))
    return "\n".join(lines)


_current: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


__all__ = ["MIB", "ModelSettings", "Settings", "TaskSettings", "get_settings", "markdown_table"]


if __name__ == "__main__":
    print(markdown_table())
