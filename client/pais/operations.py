"""Any operation a server's OpenAPI document declares, as a `Call`.

The typed methods (`client.classify(...)`) cover the built-in tasks; this covers every
operation a server has, a plugin's task or a newer server's included, from its GET
/docs.json: `client.call("reverse", text="abc")`. Fields are checked against the
document's request schema (names; files marked `format: binary`), the body is multipart
when the operation takes files and JSON otherwise, and the answer is parsed as the
document says (JSON, or a file). Batch jobs build their task from the same document
(its `x-pais-batch` extension).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .calls import Call, binary, body, form, image_files, json_body, one_file
from .results import Binary


@dataclass(frozen=True)
class Operation:
    """One POST operation of a server, read from its OpenAPI document."""

    name: str
    path: str
    task: str | None
    fields: tuple[str, ...]
    required: tuple[str, ...]
    files: dict[str, bool]  # file field -> takes several files
    binary_answer: bool
    batch: dict[str, Any] | None = field(default=None, compare=False)
    doc: str = ""

    def call(self, **values: Any) -> Call[Any]:
        """The request for these field values; ValueError naming unknown or missing fields."""
        unknown = sorted(set(values) - set(self.fields))
        if unknown:
            raise ValueError(
                f"{self.name} has no field {', '.join(unknown)}; fields: {', '.join(self.fields)}"
            )
        missing = [name for name in self.required if values.get(name) is None]
        if missing:
            raise ValueError(f"{self.name} needs {', '.join(missing)}")
        parse = binary(Binary) if self.binary_answer else json_body
        if not self.files:
            return Call("POST", self.path, parse, task=self.name, json=body(**values))
        uploads: list[Any] = []
        rest = {}
        for name, value in values.items():
            if name in self.files:
                uploads.extend(image_files(name, value) if self.files[name] else one_file(name, value))
            else:
                rest[name] = value
        return Call("POST", self.path, parse, task=self.name, form=form(**rest), files=tuple(uploads))


def operations(document: dict[str, Any]) -> dict[str, Operation]:
    """Every POST operation with an operationId in an OpenAPI document, by name."""
    schemas = document.get("components", {}).get("schemas", {})
    found = {}
    for path, methods in document.get("paths", {}).items():
        spec = methods.get("post") if isinstance(methods, dict) else None
        if not spec or "operationId" not in spec or "requestBody" not in spec or "x-pais-task" not in spec:
            continue  # only the tasks' operations (not SageMaker's /invocations, say)
        content = spec["requestBody"].get("content", {})
        media, body_spec = next(iter(content.items()), ("", {}))
        schema = _resolve(body_spec.get("schema", {}), schemas)
        properties = schema.get("properties", {})
        files = {}
        if media == "multipart/form-data":
            for name, prop in properties.items():
                prop = _resolve(prop, schemas)
                if _is_binary(prop):
                    files[name] = False
                elif prop.get("type") == "array" and _is_binary(_resolve(prop.get("items", {}), schemas)):
                    files[name] = True
        answer = spec.get("responses", {}).get("200", {}).get("content", {})
        found[spec["operationId"]] = Operation(
            name=spec["operationId"],
            path=path,
            task=spec.get("x-pais-task"),
            fields=tuple(properties),
            required=tuple(schema.get("required", ())),
            files=files,
            binary_answer=bool(answer) and "application/json" not in answer,
            batch=spec.get("x-pais-batch"),
            doc=spec.get("summary", ""),
        )
    return found


def _is_binary(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" and schema.get("format") == "binary"


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if ref and ref.startswith("#/components/schemas/"):
        return schemas.get(ref.rsplit("/", 1)[-1], {})
    return schema
