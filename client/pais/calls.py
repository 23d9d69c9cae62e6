"""One request builder per endpoint, shared by `Client`, `AsyncClient` and batch jobs.

A builder checks its arguments and returns a `Call`: what to send and how to read the
answer, with no I/O. The clients only differ in how they send it (sync or async httpx, or
SageMaker's InvokeEndpoint for batch jobs), so every endpoint is written once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx

from .errors import ResponseFormatError, api_error
from .inputs import FileInput, Upload, uploads
from .results import (
    Audio,
    Binary,
    Classification,
    Detections,
    Embedding,
    Image,
    ModelCard,
    Recommendations,
    Result,
    Translation,
    VideoAnalysis,
)

T = TypeVar("T")
R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request to a PAIS endpoint and the parser of its successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    task: str | None = None  # the SageMaker /invocations task; None: not reachable that way
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: tuple[tuple[str, Upload], ...] = ()
    stream: bool = False  # the answer is read as it arrives (synthesize_stream)
    probe: bool = False  # a health probe: any status is an answer, nothing is retried

    @contextlib.contextmanager
    def opened_files(self) -> Iterator[list[tuple[str, Any]] | None]:
        """httpx `files=` for one attempt; paths are open only inside the block."""
        if not self.files:
            yield None
            return
        with contextlib.ExitStack() as stack:
            yield [(name, stack.enter_context(upload.opened())) for name, upload in self.files]

    def build_request(self, client: httpx.Client | httpx.AsyncClient, files: Any) -> httpx.Request:
        return client.build_request(self.method, self.path, **self._content(files))

    def _content(self, files: Any) -> dict[str, Any]:
        if self.json is not None:
            return {"json": self.json}
        return {"data": self.form or None, "files": files}

    def render(self) -> tuple[bytes, str]:
        """The whole body in memory and its Content-Type (for transports that take bytes,
        such as SageMaker's InvokeEndpoint)."""
        with self.opened_files() as files:
            request = httpx.Request(self.method, f"http://pais.invalid{self.path}", **self._content(files))
            body = request.read()
        return body, request.headers.get("content-type", "application/octet-stream")

    def result(self, response: httpx.Response) -> T:
        """The parsed answer, or the typed APIError of an error status."""
        if response.status_code >= 400 and not self.probe:
            raise error_of(response)
        return self.parse(response)


def error_of(response: httpx.Response) -> Exception:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return api_error(response.status_code, body, response.headers)


# -- answer parsers -------------------------------------------------------------------


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise ResponseFormatError(
            f"{response.request.url.path}: answer is not JSON: {response.text[:200]!r}"
        ) from error


def one(cls: type[R]) -> Callable[[httpx.Response], R]:
    return lambda response: cls.from_json(json_body(response))


def each(cls: type[R], key: str | None = None) -> Callable[[httpx.Response], list[R]]:
    def parse(response: httpx.Response) -> list[R]:
        body = json_body(response)
        items = body.get(key) if key and isinstance(body, dict) else body
        if not isinstance(items, list):
            raise ResponseFormatError(
                f"expected a JSON array{f' in {key!r}' if key else ''}, got {body!r:.200}"
            )
        return [cls.from_json(item) for item in items]

    return parse


def binary(cls: type[Binary]) -> Callable[[httpx.Response], Any]:
    return lambda response: cls(
        response.content,
        response.headers.get("content-type", "application/octet-stream"),
        dict(response.headers),
    )


# -- form values ----------------------------------------------------------------------


def form(**options: Any) -> dict[str, str]:
    """Multipart form fields; None means "the server's default" and is not sent."""
    fields = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            fields[name] = "true" if value else "false"
        elif isinstance(value, list | tuple | set | frozenset):
            fields[name] = ",".join(str(v) for v in value)
        else:
            fields[name] = str(value)
    return fields


def body(**options: Any) -> dict[str, Any]:
    """A JSON body without the options left to the server's default."""
    return {name: value for name, value in options.items() if value is not None}


def image_files(field_name: str, images: FileInput | Sequence[FileInput]) -> tuple[tuple[str, Upload], ...]:
    items = uploads(images)
    if not items:
        raise ValueError(f"no {field_name} given: pass one or more images (paths, bytes or binary files)")
    return tuple((field_name, upload) for upload in items)


def one_file(field_name: str, value: FileInput) -> tuple[tuple[str, Upload], ...]:
    return ((field_name, Upload.of(value)),)


# -- the endpoints --------------------------------------------------------------------


def classify(
    images: FileInput | Sequence[FileInput], top_k: int | None = None, model: str | None = None
) -> Call[list[Classification]]:
    """Classify images (paths, bytes or binary files; JPEG, PNG, WebP, GIF): one
    `Classification` per image, in order, `top_k` predictions each (server default 5).
    `model` names a custom classifier trained with models.finetune (NAME or NAME:version)."""
    return Call(
        "POST",
        "/classify",
        each(Classification),
        task="classify",
        form=form(top_k=top_k, model=model),
        files=image_files("images", images),
    )


def embed(images: FileInput | Sequence[FileInput], model: str | None = None) -> Call[list[Embedding]]:
    """Image embeddings (the features the classifier's final layer reads): one `Embedding`
    per image, in order; from a custom classifier's backbone with `model`."""
    return Call(
        "POST",
        "/embed",
        each(Embedding),
        task="embed",
        form=form(model=model),
        files=image_files("images", images),
    )


def detect(
    images: FileInput | Sequence[FileInput],
    score_threshold: float | None = None,
    max_detections: int | None = None,
    classes: Sequence[str] | None = None,
) -> Call[list[Detections]]:
    """Detect objects: one `Detections` per image, in order; boxes [x1, y1, x2, y2] in the
    image's pixels. `classes` keeps only those labels."""
    return Call(
        "POST",
        "/detect",
        each(Detections),
        task="detect",
        form=form(score_threshold=score_threshold, max_detections=max_detections, classes=classes),
        files=image_files("images", images),
    )


def detect_annotated(
    image: FileInput,
    score_threshold: float | None = None,
    max_detections: int | None = None,
    classes: Sequence[str] | None = None,
    format: Literal["jpeg", "png"] | None = None,
) -> Call[Image]:
    """The image with its detections drawn, as JPEG (the server's default) or PNG."""
    return Call(
        "POST",
        "/detect/annotated",
        binary(Image),
        task="detect_annotated",
        form=form(
            score_threshold=score_threshold, max_detections=max_detections, classes=classes, format=format
        ),
        files=one_file("image", image),
    )


def analyze_video(
    video: FileInput,
    sample_fps: float | None = None,
    tasks: Sequence[Literal["detect", "classify"]] | None = None,
    score_threshold: float | None = None,
    max_detections: int | None = None,
    classes: Sequence[str] | None = None,
    top_k: int | None = None,
) -> Call[VideoAnalysis]:
    """Analyse a video (mp4, webm, avi; streamed from disk) at `sample_fps` frames per
    second: per-frame detections/labels and, per label, when it was first and last seen."""
    return Call(
        "POST",
        "/analyze_video",
        one(VideoAnalysis),
        task="analyze_video",
        form=form(
            sample_fps=sample_fps,
            tasks=tasks,
            score_threshold=score_threshold,
            max_detections=max_detections,
            classes=classes,
            top_k=top_k,
        ),
        files=one_file("video", video),
    )


def translate(texts: str | Sequence[str], target: str, source: str = "auto") -> Call[Translation]:
    """Translate texts (ISO 639-1 codes; `source="auto"` detects the language):
    `translations` in input order."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not all(isinstance(text, str) for text in items):
        raise TypeError("texts must be a string or a sequence of strings")
    return Call(
        "POST",
        "/translate",
        one(Translation),
        task="translate",
        json={"texts": items, "source": source, "target": target},
    )


def synthesize(
    text: str,
    voice: str | None = None,
    speed: float | None = None,
    format: Literal["wav", "flac", "ogg"] | None = None,
) -> Call[Audio]:
    """Speak `text`: an `Audio` file (WAV by default) with its sample rate."""
    return Call(
        "POST",
        "/synthesize",
        binary(Audio),
        task="synthesize",
        json=body(text=text, voice=voice, speed=speed, format=format),
    )


def synthesize_stream(
    text: str,
    voice: str | None = None,
    speed: float | None = None,
    format: Literal["wav", "pcm"] | None = None,
) -> Call[httpx.Response]:
    """Speak `text`, sentence by sentence as the audio is ready (WAV of open length, or raw
    16-bit PCM with `format="pcm"`)."""
    return Call(
        "POST",
        "/synthesize/stream",
        lambda response: response,
        json=body(text=text, voice=voice, speed=speed, format=format),
        stream=True,
    )


def recommend(
    user_id: str | None = None,
    liked_items: Sequence[str] | None = None,
    query: str | None = None,
    k: int | None = None,
    exclude_seen: bool | None = None,
) -> Call[Recommendations]:
    """Items for a known user (`user_id`), a new user's `liked_items`, or a text `query`
    (exactly one of them); `strategy` says which way the answer was found."""
    given = [
        name
        for name, value in (("user_id", user_id), ("liked_items", liked_items), ("query", query))
        if value
    ]
    if len(given) != 1:
        raise ValueError(
            f"give exactly one of user_id, liked_items or query (got {', '.join(given) or 'none'})"
        )
    return Call(
        "POST",
        "/recommend",
        one(Recommendations),
        task="recommend",
        json=body(
            user_id=None if user_id is None else str(user_id),
            liked_items=None if liked_items is None else [str(i) for i in liked_items],
            query=query,
            k=k,
            exclude_seen=exclude_seen,
        ),
    )


def similar_items(item_id: str, k: int | None = None) -> Call[Recommendations]:
    """Items most like `item_id`, best first."""
    return Call(
        "POST",
        "/similar_items",
        one(Recommendations),
        task="similar_items",
        json=body(item_id=str(item_id), k=k),
    )


def models() -> Call[list[ModelCard]]:
    """Every model the server runs, with source, version, licence and origin."""
    return Call("GET", "/models", each(ModelCard, "models"))


def stats() -> Call[dict[str, Any]]:
    """Batch sizes formed by each model service since the server started."""
    return Call("GET", "/stats", json_body)


def ready() -> Call[bool]:
    """Whether every model is loaded (GET /readyz)."""
    return Call("GET", "/readyz", lambda response: response.status_code == 200, probe=True)


def openapi() -> Call[dict[str, Any]]:
    """The server's OpenAPI document (which endpoints it has)."""
    return Call("GET", "/docs.json", json_body)
