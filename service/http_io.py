"""Reading requests into an operation's request model, and writing answers: the only code
that knows bodies, content types and JSON, shared by REST and SageMaker.

Every problem is a RequestError that says what is accepted: a body over its limit (413),
a content type the route does not take (415), JSON that does not parse or nests too
deeply (400), a malformed multipart body, an unknown field, a text value in a file field
or a file in a value field (400), a value the schema refuses (400, naming the field).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from types import UnionType
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from .errors import ErrorBody, RequestError
from .settings import section_prefix
from .task import Binary, Operation, Streamed, file_fields, limits

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
JSON_TYPES = ("application/json",)
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"


def media_type(headers: Headers | dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


# -- bodies -----------------------------------------------------------------------------


async def body_chunks(receive: Receive, limit: int, limit_name: str) -> AsyncIterator[bytes]:
    """The request body as it arrives; 413 as soon as it crosses `limit`."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise too_large(limit, limit_name)
        if chunk:
            yield chunk
        if not message.get("more_body"):
            return


async def read_body(receive: Receive, limit: int, limit_name: str) -> bytes:
    return b"".join([chunk async for chunk in body_chunks(receive, limit, limit_name)])


def too_large(limit: int, limit_name: str, size: int | None = None) -> RequestError:
    sent = f" ({size} bytes)" if size is not None else ""
    return RequestError(413, f"request body too large{sent}; the limit is {limit} bytes ({limit_name})")


class ClientGone(Exception):
    """The client disconnected before its request was read or answered."""


# -- JSON -------------------------------------------------------------------------------


def parse_json(data: bytes | str, max_depth: int, what: str = "body") -> Any:
    """The JSON value of `data`; 400 for invalid JSON or nesting deeper than `max_depth`
    (checked before parsing: Python's parser recurses once per level)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RequestError(400, f"{what} is not UTF-8 text: {error}") from None
    # fewer brackets than the limit cannot nest past it: skip the scan (most bodies)
    depth = 0 if data.count("[") + data.count("{") <= max_depth else json_depth(data)
    if depth > max_depth:
        raise RequestError(
            400, f"{what} nests JSON {depth} levels deep; at most {max_depth} (PAIS_MAX_JSON_DEPTH)"
        )
    try:
        value = json.loads(data)
    except ValueError as error:  # JSONDecodeError, and ints past Python's digit limit
        raise RequestError(400, f"{what} is not valid JSON: {error}") from None
    # JSON may escape half of a UTF-16 pair (\ud800) alone: not text any library takes
    return _without_lone_surrogates(value) if _SURROGATE_ESCAPE.search(data) else value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> Any:
    """Strings with lone surrogates replaced by U+FFFD (pairs are whole characters already)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


_BRACKETS_OR_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_depth(text: str) -> int:
    """The deepest nesting of brackets outside strings, in one linear scan (regular
    expression over the text: strings are skipped whole)."""
    depth = deepest = 0
    for match in _BRACKETS_OR_STRINGS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


# -- request models ---------------------------------------------------------------------


def validate_request(
    model: type[BaseModel], values: dict[str, Any], section: Any = None, task: str = ""
) -> BaseModel:
    """`values` as the operation's request model; 400 naming each refused field, and the
    status of its Limit for a field over a bound the task's settings set."""
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        raise RequestError(
            400,
            f"unexpected field(s): {', '.join(unknown)}; "
            f"this endpoint takes: {', '.join(model.model_fields)}",
            [{"field": name, "message": "not a field of this endpoint"} for name in unknown],
        )
    missing_files = [
        name
        for name, (_, many) in file_fields(model).items()
        if model.model_fields[name].is_required() and values.get(name) in (None, [])
    ]
    if missing_files:
        name = missing_files[0]
        raise RequestError(
            400,
            f"no {name} sent; send {'one or more files' if file_fields(model)[name][1] else 'a file'} "
            f"as multipart field {name!r}",
            [{"field": name, "message": "required"}],
        )
    try:
        request = model.model_validate(values)
    except ValidationError as error:
        raise validation_error(error) from None
    if section is not None:
        check_limits(request, section, task)
    return request


def check_limits(request: BaseModel, section: Any, task: str) -> None:
    for name, limit in limits(type(request)):
        value = getattr(request, name)
        bound = getattr(section, limit.setting)
        setting = section_prefix(task) + limit.setting.upper()
        if value is None:
            continue
        if limit.items:
            over = [(i, len(v)) for i, v in enumerate(value) if len(v) > bound]
            if over:
                raise RequestError(
                    limit.status,
                    "; ".join(f"{name}[{i}] has {n} {limit.what or 'characters'}" for i, n in over)
                    + f"; at most {bound} each ({setting})",
                    [
                        {"field": name, "index": i, "kind": "too_large", "message": f"{n} > {bound}"}
                        for i, n in over
                    ],
                )
            continue
        size = value if isinstance(value, int) else len(value)
        if size > bound:
            what = limit.what or ("" if isinstance(value, int) else "items")
            shown = f"{size} {what}".strip()
            raise RequestError(
                limit.status,
                f"{name}: {shown}; at most {bound} ({setting})",
                [
                    {
                        "field": name,
                        "kind": "too_large" if limit.status == 413 else "invalid",
                        "message": f"{size} > {bound}",
                    }
                ],
            )


def validation_error(error: ValidationError) -> RequestError:
    detail = []
    for problem in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        detail.append({"field": field, "message": problem["msg"], "kind": "invalid"})
    message = "invalid input: " + "; ".join(f"{d['field']}: {d['message']}" for d in detail)
    return RequestError(400, message, detail)


@cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    found = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        options = (
            typing.get_args(annotation)
            if typing.get_origin(annotation) in (typing.Union, UnionType)
            else (annotation,)
        )
        if any(typing.get_origin(option) is list for option in options):
            found.add(name)
    return frozenset(found)


def form_values(model: type[BaseModel], fields: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields (name, text) as request values. A list field takes repeated fields,
    a comma-separated value (`classes=person,cup`) or a JSON list (`["person","cup"]`);
    any other field must be sent once."""
    grouped: dict[str, list[str]] = {}
    for name, value in fields:
        grouped.setdefault(name, []).append(value)
    lists = _list_fields(model)
    values: dict[str, Any] = {}
    for name, texts in grouped.items():
        if name in lists:
            values[name] = [part for text in texts for part in split_list(text)]
        elif len(texts) > 1:
            raise RequestError(
                400,
                f"field {name!r} was sent {len(texts)} times; send it once",
                [{"field": name, "message": "sent more than once"}],
            )
        else:
            values[name] = texts[0]
    return values


def split_list(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return [v.strip() for v in parsed if v.strip()]
    return [part.strip() for part in stripped.split(",") if part.strip()]


async def parse_form(
    headers: Headers, chunks: AsyncIterator[bytes], model: type[BaseModel], max_files: int
) -> dict[str, Any]:
    """A multipart (or urlencoded) body as request values: file fields as bytes (a list
    for list fields), value fields as form_values. Uploads spool to disk past 1 MB
    (Starlette). An urlencoded form has no files: it is read to say what is missing."""
    files_of = file_fields(model)
    if media_type(headers) == URLENCODED:
        form = await FormParser(headers, chunks).parse()
    else:
        try:
            form = await MultiPartParser(headers, chunks, max_files=max_files, max_fields=64).parse()
        except MultiPartException as error:
            raise RequestError(400, f"malformed multipart body: {error.message}") from None
    try:
        texts: list[tuple[str, str]] = []
        uploads: dict[str, list[bytes]] = {}
        for name, value in form.multi_items():
            if name in files_of:
                if not isinstance(value, UploadFile):
                    raise RequestError(
                        400,
                        f"field {name!r} must be uploaded as files (multipart parts with a filename, "
                        f"e.g. curl -F {name}=@photo.jpg); text values and URLs are not accepted",
                        [{"field": name, "message": "not a file"}],
                    )
                uploads.setdefault(name, []).append(await value.read())
            elif isinstance(value, UploadFile):
                if name not in model.model_fields:
                    texts.append((name, ""))  # reported as unknown below
                    continue
                raise RequestError(
                    400,
                    f"field {name!r} must be a plain form value, not a file",
                    [{"field": name, "message": "a file, not a value"}],
                )
            else:
                texts.append((name, value))
    finally:
        await form.close()
    values = form_values(model, texts)
    for name, datas in uploads.items():
        many = files_of[name][1]
        if not many and len(datas) > 1:
            raise RequestError(
                400,
                f"field {name!r} takes one file; {len(datas)} were sent",
                [{"field": name, "message": "one file"}],
            )
        values[name] = datas if many else datas[0]
    return values


def json_values(
    model: type[BaseModel], record: Any, base64_files: bool, what: str = "body"
) -> dict[str, Any]:
    """A parsed JSON object as request values; with `base64_files`, file fields hold base64
    strings (one, or a list) that are decoded here (SageMaker JSON bodies)."""
    if not isinstance(record, dict):
        raise RequestError(
            400, f"{what} must be a JSON object with the fields {', '.join(model.model_fields)}"
        )
    values = dict(record)
    if base64_files:
        for name, (_, many) in file_fields(model).items():
            if name in values:
                values[name] = _base64_field(name, values[name], many)
    return values


def _base64_field(name: str, value: Any, many: bool) -> bytes | list[bytes]:
    items = value if isinstance(value, list) else [value]
    decoded = []
    for index, item in enumerate(items):
        where = f"{name}[{index}]" if isinstance(value, list) else name
        if not isinstance(item, str):
            raise RequestError(
                400,
                f"{where} must be a base64 string",
                [{"field": name, "index": index, "message": "not a string"}],
            )
        try:
            decoded.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise RequestError(
                400,
                f"{where} is not valid base64",
                [{"field": name, "index": index, "message": "not base64"}],
            ) from None
    if many:
        return decoded
    if len(decoded) != 1:
        raise RequestError(400, f"{name} takes one base64 file, got {len(decoded)}")
    return decoded[0]


# -- answers ----------------------------------------------------------------------------


@cache
def result_adapter(result_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(result_type)


def json_body(op: Operation | None, result: Any, result_type: Any = None) -> bytes:
    return result_adapter(result_type if result_type is not None else op.result_type).dump_json(result)  # type: ignore[union-attr]


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    media: str = "application/json",
    headers: list[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: RequestError) -> None:
    await send_bytes(send, error.status, json.dumps(error.body()).encode(), headers=error.headers())


async def send_result(send: Send, op: Operation, result: Any) -> None:
    if isinstance(result, Binary):
        headers = [(k.lower().encode(), v.encode()) for k, v in result.headers.items()]
        await send_bytes(send, 200, result.content, result.media_type, headers)
    elif isinstance(result, Streamed):
        headers = [(k.lower().encode(), v.encode()) for k, v in result.headers.items()]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", result.media_type.encode()), *headers],
            }
        )
        async for chunk in result.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send_bytes(send, 200, json_body(op, result))


ERROR_SCHEMA = ErrorBody
