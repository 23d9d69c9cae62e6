"""Text translation: POST /translate and GET /translate/languages.

A request is cut into pieces of whole sentences (at most PIECE_CHARS each) that the
runner schedules like separate items: a request of 200,000 characters then holds one
lane of the translation runtime at a time, and a one-sentence request sent meanwhile is
served beside it instead of behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.translation import (
    AUTO,
    DEFAULT_SOURCE,
    IdentifyLanguage,
    Languages,
    Translation,
    TranslationRequest,
)
from models.translation.segment import split_text

from ..config import ModelSettings, setting
from ..context import Context
from ..errors import RequestError, single
from ..task import BatchCost, BatchJob, Limit, Operation, Query, Task

PIECE_CHARS = 1000
# Control characters but tab, line feed and carriage return: apertium frames its input
# with NUL, and none of them is text anyone translates.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class TranslationSettings(ModelSettings):
    model: str = setting(
        DEFAULT_SOURCE,
        "Translation engines, comma-separated, first listed served first: apertium:* (every installed "
        "pair), apertium:<eng-spa or en-es>, hf:<id> or a directory (Marian, M2M-100, NLLB); prefix "
        "<src>-<tgt>= to name a model's pair.",
    )
    serve_in: str = setting(
        "entry",
        "Where the engines run: `entry` (default: apertium's pipelines are processes of their own, "
        "so the entry worker only routes sentences, with no hop; each entry worker starts its own "
        "pipelines) or `model-service` (for neural models on a GPU).",
        choices=("model-service", "entry"),
    )
    max_batch_size: int = setting(32, "Most pieces (of up to 1,000 characters) in one batch.", 1)
    max_batch_chars: int = setting(
        2000,
        "Most characters in one batch of an entry-served runtime: a small request waits for at most "
        "one such batch (larger: more throughput for big requests, longer waits for small ones).",
        1,
    )
    max_texts: int = setting(128, "Most texts in one /translate request.", 1)
    max_text_chars: int = setting(10_000, "Longest text /translate accepts, in characters.", 1)
    max_request_chars: int = setting(
        200_000,
        "Most characters in one /translate request, all texts together (apertium translates ~40,000 a "
        "second per pair here: the default keeps a request well inside the timeout).",
        1,
    )
    allow_pivot: bool = setting(
        False, "Serve pairs without a direct engine through English (two hops; answers name the route)."
    )
    pipelines_per_pair: int = setting(
        2, "Apertium pipelines per language pair and runtime (started on demand, ~13 processes each).", 1
    )
    engine_timeout_s: int = setting(
        30, "An apertium pipeline that answers nothing for this long while busy is killed and replaced.", 1
    )
    unknown_marks: bool = setting(
        False, "Keep apertium's marks on words it could not translate (*word, #word)."
    )
    generation_batch: int = setting(64, "Sentences per generate() call of a neural translation model.", 1)


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: Annotated[
        list[Annotated[str, Field(max_length=1_000_000)]],
        Limit("max_texts", what="texts"),
        Limit("max_text_chars", items=True),
        Field(
            description="plain texts; line breaks, paragraphs and spacing are kept; "
            "empty ones come back empty"
        ),
    ]
    target: Annotated[
        str, Field(description="ISO 639-1 code, e.g. es", json_schema_extra={"pattern": "^[a-zA-Z]{2}$"})
    ]
    source: Annotated[
        str,
        Field(
            description="ISO 639-1 code, or auto to identify it",
            json_schema_extra={"pattern": "^([a-zA-Z]{2}|auto)$"},
        ),
    ] = AUTO


async def translate(ctx: Context, request: TranslateRequest) -> Translation:
    """Translate texts (plain text; line breaks, paragraphs and spacing are kept), in order."""
    texts = [_CONTROL.sub("", text) for text in request.texts]
    total = sum(map(len, texts))
    limit = ctx.section.max_request_chars
    if total > limit:
        raise RequestError(
            413,
            f"{total} characters in one request; at most {limit} in all "
            "(PAIS_TRANSLATION_MAX_REQUEST_CHARS): send the texts in several requests",
            [{"field": "texts", "kind": "too_large", "message": f"{total} characters"}],
        )
    source, target = request.source.strip().lower(), request.target.strip().lower()
    if total <= PIECE_CHARS:
        return single(await ctx.predict([TranslationRequest(texts, source, target)]))
    detection = None
    if source == AUTO:
        detection = single(await ctx.predict([IdentifyLanguage(texts)]))
        if detection.language is None:
            raise RequestError(
                422, "cannot identify the source language of texts without letters; give `source` explicitly"
            )
        source = detection.language
    splits = [split_text(text) for text in texts]
    pieces, places = _pieces([s.segments for s in splits])
    results = await ctx.predict([TranslationRequest(list(piece), source, target) for piece in pieces])
    answers = [single([result]) for result in results]
    translated: list[list[str]] = [[""] * len(s.segments) for s in splits]
    for answer, place in zip(answers, places, strict=True):
        for (text, segment), sentence in zip(place, answer.translations, strict=True):
            translated[text][segment] = sentence
    first = answers[0]
    return Translation(
        model=first.model,
        source=source,
        target=first.target,
        route=first.route,
        translations=[split.join(translated[i]) for i, split in enumerate(splits)],
        detection=detection,
    )


def _pieces(segments: list[tuple[str, ...]]) -> tuple[list[list[str]], list[list[tuple[int, int]]]]:
    """Consecutive sentences grouped into pieces of at most PIECE_CHARS (a longer sentence
    is a piece of its own), and where each sentence of each piece belongs."""
    pieces: list[list[str]] = [[]]
    places: list[list[tuple[int, int]]] = [[]]
    size = 0
    for text, sentences in enumerate(segments):
        for index, sentence in enumerate(sentences):
            if pieces[-1] and size + len(sentence) > PIECE_CHARS:
                pieces.append([])
                places.append([])
                size = 0
            pieces[-1].append(sentence)
            places[-1].append((text, index))
            size += len(sentence)
    if not pieces[-1]:  # texts with no sentence at all (empty or blank)
        pieces.pop()
        places.pop()
    return pieces or [[]], places or [[]]


async def language_choices(ctx: Context) -> dict[str, list[str]]:
    """The codes `source` and `target` may name: those of the served pairs."""
    languages: Languages = await ctx.read("languages")
    return {
        "source": sorted({pair.source for pair in languages.pairs} | {AUTO}),
        "target": sorted({pair.target for pair in languages.pairs}),
    }


async def list_languages(ctx: Context) -> Languages:
    """The pairs served, each with its model(s), engine and licence."""
    return await ctx.read("languages")


TASK = Task(
    name="translation",
    summary="text translation between the installed apertium pairs (and any seq2seq model configured)",
    runtime="models.translation:Translator",
    settings=TranslationSettings,
    operations=(
        Operation(
            "/translate",
            translate,
            statuses=(422,),
            batch=BatchJob("text", "texts", group=32, split="field:translations"),
            choices=language_choices,
        ),
    ),
    queries=(Query("/translate/languages", list_languages),),
    reads=("languages",),
    lanes=2,
    batch_cost=BatchCost(lambda item: sum(map(len, getattr(item, "texts", ()))), "max_batch_chars"),
    runtime_options=lambda section, settings: {
        "allow_pivot": section.allow_pivot,
        "pipelines_per_pair": section.pipelines_per_pair,
        "engine_timeout_s": section.engine_timeout_s,
        "show_unknown": section.unknown_marks,
        "generation_batch": section.generation_batch,
    },
)
