"""GET /schema.json in BentoML's own format, from the task declarations, so that
`bentoml.SyncHTTPClient(url).classify(images=[...])` works against PAIS as against any
BentoML service (its clients read this document, not OpenAPI). File fields are BentoML's
`{"type": "file"}`; binary answers are `{"type": "string", "format": "binary"}`."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from .task import Task

_INLINE = "#/$defs/{model}"


def schema(tasks: tuple[Task, ...], name: str = "pais") -> dict[str, Any]:
    routes = []
    for task in tasks:
        for op in task.operations:
            request = op.request_type.model_json_schema(mode="validation")
            for field, (_, many) in op.file_fields().items():
                request["properties"][field] = (
                    {"type": "array", "items": {"type": "file"}} if many else {"type": "file"}
                )
            if op.answer is not None:
                output: dict[str, Any] = {
                    "type": "string",
                    "format": "binary",
                    "is_stream": op.answer.streamed,
                }
            else:
                output = TypeAdapter(op.result_type).json_schema(mode="serialization", ref_template=_INLINE)
            routes.append(
                {"name": op.name, "route": op.path, "input": request, "output": output, "doc": op.description}
            )
    return {"name": name, "type": "service", "routes": routes}
