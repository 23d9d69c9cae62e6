"""Checking AWS calls against botocore's own service model, and standing in for answers a
dry run never receives.

botocore's `ParamValidator` checks names, types, required members and lengths; it does not
check enums, so this module adds that (instance types are enums in the SageMaker and EC2
models, and a typo there is the most common way a deployment fails late).
"""

from __future__ import annotations

import difflib
import io
from functools import cache
from typing import Any

import botocore
import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator


class Unknown:
    """A value a real run would read from an AWS answer (an ARN, an id) that a dry run does
    not have. Indexing it names the path; it prints as `<service.Operation.Path>`."""

    def __init__(self, ref: str):
        self.ref = ref

    def __getitem__(self, key: str | int) -> Unknown:
        return Unknown(f"{self.ref}[{key}]" if isinstance(key, int) else f"{self.ref}.{key}")

    def get(self, key: str, default: Any = None) -> Unknown:
        return self[key]

    def __str__(self) -> str:
        return f"<{self.ref}>"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Secret(str):
    """A value that must not be shown (a key, a password): plans and validation messages
    print it as `<secret>`; AWS receives the string itself."""

    def __repr__(self) -> str:
        return "<secret>"


def plan_params(value: Any) -> Any:
    """The parameters as they are recorded and printed: unknowns as their `<...>` names,
    bodies as their size (a plan never carries the bytes), secrets as `<secret>`."""
    if isinstance(value, Secret):
        return "<secret>"
    if isinstance(value, dict):
        return {key: plan_params(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plan_params(item) for item in value]
    if isinstance(value, Unknown):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, io.IOBase):
        return "<stream>"
    return value


@cache
def service_model(service: str) -> Any:
    return _session().get_service_model(service)


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def validate_call(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """Every way `params` breaks `service.operation`'s input shape; empty when valid."""
    try:
        model = service_model(service)
    except botocore.exceptions.UnknownServiceError:
        return [f"unknown service {service!r}"]
    if operation not in model.operation_names:
        return [f"{service} has no operation {operation!r}"]
    shape = model.operation_model(operation).input_shape
    if shape is None:
        return [] if not params else [f"{operation} takes no parameters"]
    report = ParamValidator().validate(params, shape)
    problems = report.generate_report().splitlines() if report.has_errors() else []
    problems += [p for p in enum_problems(params, shape, "") if p not in problems]
    return [p.strip() for p in problems if p.strip()]


def enum_problems(value: Any, shape: Shape, path: str) -> list[str]:
    """Values outside their shape's enum, with where they are and what is allowed."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        found = []
        for key, item in value.items():
            if key in shape.members:
                found += enum_problems(item, shape.members[key], f"{path}.{key}" if path else key)
        return found
    if kind == "list" and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in enum_problems(item, shape.member, f"{path}[{i}]")]
    if kind == "map" and isinstance(value, dict):
        return [p for key, item in value.items() for p in enum_problems(item, shape.value, f"{path}.{key}")]
    allowed = getattr(shape, "enum", None)
    if kind == "string" and allowed and isinstance(value, str) and value not in allowed:
        near = difflib.get_close_matches(value, allowed, n=3) or allowed[:3]
        return [
            f"{path}: {value!r} is not one of the {len(allowed)} values botocore "
            f"{botocore.__version__} allows for {shape.name} (did you mean {', '.join(near)}?)"
        ]
    return []


@cache
def has_member(service: str, operation: str, member: str) -> bool:
    """Whether `service.operation` takes a parameter called `member`."""
    shape = service_model(service).operation_model(operation).input_shape
    return shape is not None and member in shape.members


def enum_values(service: str, shape_name: str) -> list[str]:
    """The values botocore's model allows for an enum shape (e.g. instance types)."""
    return list(service_model(service).shape_for(shape_name).enum)
