"""What every runtime says about the model it serves (the service's /models answer)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    task: str  # classification, detection, translation, ...
    name: str  # short model name shown in every answer, e.g. "efficientnet-lite0"
    source: str  # the source URI it was loaded from
    version: str  # changes exactly when the weights change (package version + digest, commit)
    licence: str
    origin: str  # where the weights come from, in words
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(
            **{k: data[k] for k in ("task", "name", "source", "version", "licence", "origin")},
            details=dict(data.get("details", {})),
        )

    def with_details(self, **details: Any) -> ModelInfo:
        return replace(self, details={**self.details, **details})
