"""A seventh task in one file: what adding a task takes (runtime, declaration), proven by
tests/test_new_task.py. Served with PAIS_TASK_MODULES=tests.tiny_task.

Reversing text needs no model, so the "runtime" here is a few lines; a real task's
runtime lives in models/<task>/ and its declaration in service/tasks/<task>.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.errors import ErrorKind, ItemError
from models.info import ModelInfo
from service.config import ModelSettings, setting
from service.context import Context
from service.errors import single
from service.task import BatchJob, Limit, Operation, Task


@dataclass(frozen=True)
class ReverseItem:
    text: str


@dataclass(frozen=True)
class Reversed:
    model: str
    text: Annotated[str, Field(description="the text, last character first")]


class Reverser:
    """The runtime interface: load(source, device, dtype), cards, predict_batch."""

    def __init__(self, source: str):
        self.cards = [
            ModelInfo("reverse", "reverser", source, "1", "MIT", "tests/tiny_task.py", {"batches": 0})
        ]

    @classmethod
    def load(
        cls, source: str = "default", *, device: str | None = None, dtype: str | None = None
    ) -> Reverser:
        return cls("builtin:reverser" if source == "default" else source)

    def predict_batch(self, items: Sequence[ReverseItem]) -> list[Reversed | ItemError]:
        return [
            Reversed("reverser", item.text[::-1])
            if item.text.strip()
            else ItemError(ErrorKind.EMPTY, "text is empty")
            for item in items
        ]


@dataclass(frozen=True)
class ReverseSettings(ModelSettings):
    model: str = setting("builtin:reverser", "What reverses the text (there is one way).")
    max_chars: int = setting(100, "Longest text /reverse takes.", 1)


class ReverseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Limit("max_chars", what="characters"), Field(description="any text")]


async def reverse(ctx: Context, request: ReverseRequest) -> Reversed:
    """Reverse a text, last character first."""
    return single(await ctx.predict([ReverseItem(request.text)]), "text")


TASK = Task(
    name="reverse",
    summary="Text reversal (a test's task)",
    runtime="tests.tiny_task:Reverser",
    settings=ReverseSettings,
    operations=(Operation("/reverse", reverse, batch=BatchJob("text", "text")),),
)
