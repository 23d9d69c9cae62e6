"""The SDK's typed methods and result types agree with the OpenAPI document the server
builds from its task declarations: every typed method names a served operation and only
its fields; every result type's fields are in the answer's schema, and the fields the SDK
requires are ones the schema requires. The SDK stays free of the server's code (it is
installed elsewhere); this test is what keeps the two in step."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import pytest

from pais import calls, results
from pais.operations import operations
from service.openapi import document
from service.settings import Settings
from service.tasks import TASKS

DOCUMENT = document(tuple(TASKS.all()), Settings.from_env({}))
SCHEMAS = DOCUMENT["components"]["schemas"]

# typed builder -> (operation, the result type its answer is parsed into, a list of them?)
TYPED = {
    calls.classify: ("classify", results.Classification, True),
    calls.embed: ("embed", results.Embedding, True),
    calls.detect: ("detect", results.Detections, True),
    calls.detect_annotated: ("detect_annotated", None, False),
    calls.analyze_video: ("analyze_video", results.VideoAnalysis, False),
    calls.translate: ("translate", results.Translation, False),
    calls.synthesize: ("synthesize", None, False),
    calls.synthesize_stream: ("synthesize_stream", None, False),
    calls.recommend: ("recommend", results.Recommendations, False),
    calls.similar_items: ("similar_items", results.Recommendations, False),
}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def answer_schema(operation: str) -> dict[str, Any]:
    path = operations(DOCUMENT)[operation].path
    return resolve(
        DOCUMENT["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    )


def check_result_type(cls: type, schema: dict[str, Any], where: str) -> None:
    """`cls`'s fields are the schema's properties; the ones it requires the schema requires;
    nested result types are checked the same way."""
    schema = resolve(schema)
    properties = schema.get("properties", {})
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if spec.name == "extra":
            continue
        assert spec.name in properties, f"{where}: {cls.__name__}.{spec.name} is not in the answer's schema"
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if required:
            assert spec.name in schema.get("required", []), (
                f"{where}: {cls.__name__}.{spec.name} may be missing"
            )
        nested = nested_result(hints[spec.name])
        if nested is not None:
            check_result_type(nested, item_schema(properties[spec.name]), f"{where}.{spec.name}")


def nested_result(hint: Any) -> type | None:
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, results.Result):
            return candidate
        for inner in typing.get_args(candidate):
            if isinstance(inner, type) and issubclass(inner, results.Result):
                return inner
    return None


def item_schema(schema: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(schema)
    if "anyOf" in schema:
        schema = next(resolve(s) for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("type") == "array":
        return resolve(schema["items"])
    if schema.get("type") == "object" and "additionalProperties" in schema:
        return resolve(schema["additionalProperties"])
    return schema


@pytest.mark.parametrize("builder", TYPED, ids=lambda b: b.__name__)
def test_typed_methods_name_served_operations_and_their_fields(builder):
    operation_name, _, _ = TYPED[builder]
    operation = operations(DOCUMENT)[operation_name]
    parameters = set(inspect.signature(builder).parameters)
    unknown = parameters - set(operation.fields)
    assert not unknown, f"pais.calls.{builder.__name__} sends {unknown}, not fields of {operation.path}"
    values = {name: example(name, operation) for name in operation.required}
    if builder is calls.recommend:
        values["user_id"] = "196"  # exactly one of three optional fields
    call = builder(**values)
    assert call.path == operation.path and call.task in (operation_name, None)  # None: no SageMaker route
    assert bool(call.files) == bool(operation.files), "multipart exactly when the operation takes files"


def example(name: str, operation: Any) -> Any:
    if name in operation.files:
        return [b"\xff\xd8\xff"] if operation.files[name] else b"\xff\xd8\xff"
    return {"texts": ["hi"], "target": "es", "text": "hi", "item_id": "1"}.get(name, "x")


@pytest.mark.parametrize("builder", [b for b, (_, cls, _) in TYPED.items() if cls], ids=lambda b: b.__name__)
def test_result_types_match_the_answer_schemas(builder):
    operation_name, cls, many = TYPED[builder]
    schema = answer_schema(operation_name)
    if many:
        assert schema["type"] == "array"
        schema = resolve(schema["items"])
    check_result_type(cls, schema, operation_name)


def test_model_cards_match_the_models_answer():
    models = resolve(
        DOCUMENT["paths"]["/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    )
    check_result_type(results.ModelCard, item_schema(models["properties"]["models"]), "/models")


def test_every_operation_is_reachable_from_the_sdk_by_name():
    for name, operation in operations(DOCUMENT).items():
        if name.startswith("sagemaker_"):
            continue
        assert operation.task in TASKS.names(), name
        values = {field: example(field, operation) for field in operation.required}
        assert operation.call(**values).path == operation.path
