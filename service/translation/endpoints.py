"""POST /translate and GET /translate/languages, mixed into the entry service
(service.gateway.PAIS). Shapes and limits are checked here; language codes and pairs by
the model service, which knows what its engines serve."""

from http import HTTPStatus
from typing import Annotated, Any

import bentoml
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from models.translation import AUTO

from ..errors import RequestError, answers_request_errors
from ..model_calls import answers_model_service_errors, ask_once
from ..sagemaker import InvocationRoute
from ..settings import get_settings
from .schemas import TranslateItem, TranslateOutcome, TranslationOut
from .worker import TextTranslation

settings = get_settings()

# TranslationError.kind -> HTTP status
ERROR_STATUS = {
    "unknown_language": HTTPStatus.BAD_REQUEST,
    "unsupported_pair": HTTPStatus.UNPROCESSABLE_ENTITY,
    "undetectable": HTTPStatus.UNPROCESSABLE_ENTITY,
    "engine": HTTPStatus.SERVICE_UNAVAILABLE,
}


class TranslationEndpoints:
    translation = bentoml.depends(TextTranslation)
    # SageMaker: custom attribute task=translate, the same JSON body as POST /translate
    invocation_routes = (InvocationRoute("translate", "/translate"),)

    @bentoml.api(route="/translate")
    @answers_request_errors
    async def translate(
        self,
        texts: Annotated[list[str], Field(description="plain texts; empty strings come back empty")],
        target: Annotated[str, Field(description="ISO 639-1 code, e.g. es")],
        source: Annotated[str, Field(description="ISO 639-1 code, or auto to identify it")] = AUTO,
    ) -> TranslationOut:
        """Translate texts (plain text; line breaks, paragraphs and spacing are kept), in order."""
        check_limits(texts)
        item = TranslateItem(texts=texts, source=source.strip().lower(), target=target.strip().lower())
        (outcome,) = await self.translation.to_async.translate_batch([item])
        if isinstance(outcome, dict):
            outcome = TranslateOutcome.model_validate(outcome)
        if outcome.error:
            error = outcome.error
            raise RequestError(
                ERROR_STATUS.get(error.kind, HTTPStatus.BAD_REQUEST), error.message, error.detail
            )
        return outcome.result

    async def translation_languages(self) -> dict[str, Any]:
        """The served pairs (asked once per worker: engines do not change while serving)."""
        return await ask_once(self, "translation", self.translation, "languages")


def check_limits(texts: list[str]) -> None:
    if len(texts) > settings.max_texts_per_request:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(texts)} texts in one request; at most {settings.max_texts_per_request} "
            "(PAIS_MAX_TEXTS_PER_REQUEST)",
        )
    too_long = [(i, len(text)) for i, text in enumerate(texts) if len(text) > settings.max_text_chars]
    if too_long:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "; ".join(f"texts[{i}] has {n} characters" for i, n in too_long)
            + f"; at most {settings.max_text_chars} per text (PAIS_MAX_TEXT_CHARS)",
            [{"field": "texts", "index": i, "characters": n} for i, n in too_long],
        )
    total = sum(len(text) for text in texts)
    if total > settings.max_translate_chars:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{total} characters in one request; at most {settings.max_translate_chars} in all "
            "(PAIS_MAX_TRANSLATE_CHARS): send the texts in several requests",
        )


@answers_model_service_errors
async def list_languages(request: Request) -> JSONResponse:
    """GET /translate/languages: pairs with model, engine and licence."""
    service = bentoml.get_current_service()
    return JSONResponse(await service.translation_languages())
