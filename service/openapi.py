"""The OpenAPI document (GET /docs.json), generated from the task declarations.

What a route accepts and answers is what its handler's type hints say, so the document
cannot drift from the code: request fields with their ranges, enums and defaults (files
as binary parts), the 200 answer's schema or media types, and every error status the
route can answer, each with the one error schema. The routes every server has (health,
/models, /stats, SageMaker's) are described here too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from models.info import ModelInfo

from .errors import RETRYABLE, ErrorBody
from .task import Operation, Query, Task, limits

REF = "#/components/schemas/{model}"
# Statuses any route may answer: an API key is missing (when keys are set), too many
# requests in flight, an internal fault.
COMMON_STATUSES = (401, 429, 500)
# Statuses of every POST route: invalid body, too large, unsupported content type, the
# model busy or loading, the deadline passed.
POST_STATUSES = (400, 413, 415, 503, 504)
REASONS = {
    400: "Bad request: the message says what was wrong and what is accepted",
    401: "Missing or invalid API key (only when the server has keys)",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large: over a size limit (body, pixels, characters, items)",
    415: "Unsupported media type",
    422: "Well-formed, but this model cannot process it",
    429: "Too many requests in flight; retry after Retry-After seconds",
    500: "Internal error (a bug: the failure is logged)",
    503: "The model is loading or at capacity; retry after Retry-After seconds",
    504: "The request did not finish within PAIS_REQUEST_TIMEOUT_S",
}


class ModelsAnswer(BaseModel):
    models: list[ModelInfo]


class Schemas:
    """components.schemas, filled as types are described."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, type_: Any, mode: str = "serialization") -> dict[str, Any]:
        schema = TypeAdapter(type_).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        return schema


def document(
    tasks: tuple[Task, ...],
    settings: Any,
    choices: dict[str, dict[str, list[str]]] | None = None,
    title: str = "PAIS",
    version: str = "1",
) -> dict[str, Any]:
    """The document of the served `tasks`, with the bounds their settings sections set and
    the `choices` their loaded models allow ({operation: {field: values}})."""
    schemas = Schemas()
    schemas.components["Error"] = schemas.of(ErrorBody)
    paths: dict[str, Any] = {}
    for task in tasks:
        for op in task.operations:
            allowed = (choices or {}).get(op.name, {})
            paths[op.path] = {"post": _operation(task, op, schemas, settings.section(task.name), allowed)}
        for query in task.queries:
            paths[query.path] = {"get": _query(task, query, schemas)}
    paths["/models"] = {
        "get": _get(
            "list_models",
            "Every model this server runs, with source, version, licence and origin.",
            schemas.of(ModelsAnswer),
            "server",
        )
    }
    paths["/stats"] = {
        "get": _get(
            "batch_stats",
            "Batch sizes each model formed since the server started.",
            {"type": "object"},
            "server",
        )
    }
    paths.update(_standard_routes(tasks))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Pretrained AI services. Every error answer has the Error schema.",
        },
        "paths": paths,
        "components": {"schemas": schemas.components},
    }


def _operation(
    task: Task, op: Operation, schemas: Schemas, section: Any, choices: dict[str, list[str]]
) -> dict[str, Any]:
    request = schemas.of(op.request_type, mode="validation")
    _apply_limits(request, op, section)
    _apply_choices(request, choices)
    files = op.file_fields()
    if files:
        _form_fields(request)
        body = {"multipart/form-data": {"schema": _multipart(request, schemas)}}
        _describe_media(request, op)
    else:
        body = {"application/json": {"schema": request}}
    spec: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "description": op.description,
        "tags": [task.name],
        "requestBody": {"required": True, "content": body},
        "responses": {"200": _answer(op, schemas), **_errors((*POST_STATUSES, *op.statuses))},
        # what the SDK's batch jobs need to send this operation's records (pais batch <name>)
        "x-pais-task": task.name,
    }
    if op.batch is not None:
        spec["x-pais-batch"] = {
            "kind": op.batch.kind,
            "payload": op.batch.payload,
            "group": op.batch.group,
            "split": op.batch.split,
        }
    return spec


def _apply_limits(request: dict[str, Any], op: Operation, section: Any) -> None:
    """Write each Limit's configured bound into the request schema (what the route accepts
    is what this server's settings allow, not only the schema's own bounds)."""
    properties = request.get("properties", {})
    for name, limit in limits(op.request_type):
        bound = getattr(section, limit.setting)
        for schema in _branches(properties.get(name, {})):
            if limit.items:
                schema.setdefault("items", {})["maxLength"] = bound
            elif schema.get("type") == "integer":
                schema["maximum"] = min(schema.get("maximum", bound), bound)
            elif schema.get("type") == "array":
                schema["maxItems"] = bound
            elif schema.get("type") == "string":
                schema["maxLength"] = bound


def _apply_choices(request: dict[str, Any], choices: dict[str, list[str]]) -> None:
    """Each field's accepted values as an enum (of its items, for a list field)."""
    properties = request.get("properties", {})
    for name, values in choices.items():
        for schema in _branches(properties.get(name, {})):
            target = schema.setdefault("items", {}) if schema.get("type") == "array" else schema
            target["enum"] = sorted(values)


def _form_fields(request: dict[str, Any]) -> None:
    """A multipart form cannot send null: an optional field is left out instead, so its
    schema loses the null branch (and a null default)."""
    for schema in request.get("properties", {}).values():
        options = schema.get("anyOf")
        if options and any(option.get("type") == "null" for option in options):
            kept = [option for option in options if option.get("type") != "null"]
            schema.pop("anyOf")
            schema.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
            if "default" in schema and schema["default"] is None:
                schema.pop("default")


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema, or its non-null branches when it is optional (anyOf [..., null])."""
    options = schema.get("anyOf")
    if options:
        return [option for option in options if option.get("type") != "null"]
    return [schema] if schema else []


def _multipart(request: dict[str, Any], schemas: Schemas) -> dict[str, Any]:
    """The request model's schema, inlined (multipart parts are described by property)."""
    if "$ref" in request:
        name = request["$ref"].rsplit("/", 1)[-1]
        return schemas.components[name]
    return request


def _describe_media(request: dict[str, Any], op: Operation) -> None:
    """The media types each file field accepts, in its description: a part's own
    Content-Type is not checked (the content is), and tools such as schemathesis cannot
    send parts typed as images (no image serializer)."""
    for name, (marker, _) in op.file_fields().items():
        schema = request.get("properties", {}).get(name)
        if schema is not None:
            schema["description"] = (
                f"{schema.get('description', '')} (accepted: {', '.join(marker.media_types)})".strip()
            )


def _answer(op: Operation, schemas: Schemas) -> dict[str, Any]:
    if op.answer is None:
        return {"description": "OK", "content": {"application/json": {"schema": schemas.of(op.result_type)}}}
    answer: dict[str, Any] = {
        "description": op.answer.description,
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}} for media in op.answer.media_types
        },
    }
    if op.answer.headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in op.answer.headers.items()
        }
    return answer


def _errors(statuses: tuple[int, ...], common: tuple[int, ...] = COMMON_STATUSES) -> dict[str, Any]:
    """Error answers: `statuses`, and those every route may give (not health checks: they
    need no key and are never shed)."""
    out = {}
    for status in sorted({*statuses, *common}):
        entry: dict[str, Any] = {
            "description": REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
        if status in RETRYABLE:  # answered with Retry-After
            entry["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
        out[str(status)] = entry
    return out


def _query(task: Task, query: Query, schemas: Schemas) -> dict[str, Any]:
    return _get(query.name, query.summary, schemas.of(query.result_type), task.name)


def _get(
    name: str, summary: str, schema: dict[str, Any], tag: str, statuses: tuple[int, ...] = (503,)
) -> dict[str, Any]:
    return {
        "operationId": name,
        "summary": summary,
        "tags": [tag],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
            **_errors(statuses),
        },
    }


def _text(name: str, summary: str, statuses: dict[str, str], tag: str = "health") -> dict[str, Any]:
    return {
        "operationId": name,
        "summary": summary,
        "tags": [tag],
        "responses": {
            status: {"description": text, "content": {"text/plain": {"schema": {"type": "string"}}}}
            for status, text in statuses.items()
        },
    }


def _page() -> dict[str, Any]:
    return {
        "operationId": "playground",
        "summary": "The playground: a page to try every task in a browser (it asks for the API key).",
        "tags": ["server"],
        "responses": {
            "200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}
        },
    }


def _standard_routes(tasks: tuple[Task, ...]) -> dict[str, Any]:
    """Health checks (BentoML's), SageMaker's contract, and this document."""
    operations = [op.name for task in tasks for op in task.operations]
    file_media = sorted(
        {
            m
            for task in tasks
            for op in task.operations
            for marker, _ in op.file_fields().values()
            for m in marker.media_types
        }
    )
    any_body = {"schema": {"type": "string", "format": "binary"}}
    return {
        "/ui": {"get": _page()},
        "/livez": {"get": _text("livez", "Liveness: the HTTP server answers.", {"200": "alive"})},
        "/readyz": {
            "get": _text(
                "readyz", "Readiness: every model is loaded.", {"200": "ready", "503": "still loading"}
            )
        },
        "/ping": {
            "get": {
                "operationId": "sagemaker_ping",
                "summary": "SageMaker health check: 200 once every model is loaded (answers within 2 s).",
                "tags": ["sagemaker"],
                "responses": {
                    "200": {
                        "description": "ready",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors((503,), common=(500,)),
                },
            }
        },
        "/execution-parameters": {
            "get": {
                "operationId": "sagemaker_execution_parameters",
                "summary": "SageMaker Batch Transform's tuning answer.",
                "tags": ["sagemaker"],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": [
                                        "MaxConcurrentTransforms",
                                        "BatchStrategy",
                                        "MaxPayloadInMB",
                                    ],
                                    "properties": {
                                        "MaxConcurrentTransforms": {"type": "integer"},
                                        "BatchStrategy": {
                                            "type": "string",
                                            "enum": ["MULTI_RECORD", "SINGLE_RECORD"],
                                        },
                                        "MaxPayloadInMB": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(()),
                },
            }
        },
        "/invocations": {
            "post": {
                "operationId": "sagemaker_invocations",
                "summary": "SageMaker inference: one operation's request (custom attribute task=<name>).",
                "description": (
                    "X-Amzn-SageMaker-Custom-Attributes: `task=<operation>;<field>=<value>` picks the "
                    f"operation ({', '.join(operations)}) and sets its form fields. The body is the "
                    "operation's REST body (JSON or multipart), a JSON object whose file fields hold "
                    f"base64, or a raw file ({', '.join(file_media)}). With SAGEMAKER_BATCH=true a JSON "
                    "Lines body is one record per line, answered with one line per record."
                ),
                "tags": ["sagemaker"],
                "parameters": [
                    {
                        "name": "X-Amzn-SageMaker-Custom-Attributes",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "task=<operation>;<field>=<value>...",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/jsonlines": any_body,
                        "multipart/form-data": {"schema": {"type": "object"}},
                        **{media: any_body for media in file_media},
                    },
                },
                "responses": {
                    "200": {
                        "description": "the operation's answer",
                        "content": {
                            "application/json": {"schema": {}},
                            "application/jsonlines": any_body,
                            "image/jpeg": any_body,
                            "image/png": any_body,
                            "audio/wav": any_body,
                        },
                    },
                    **_errors((*POST_STATUSES, 404, 422)),
                },
            }
        },
        "/docs.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "tags": ["server"],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
