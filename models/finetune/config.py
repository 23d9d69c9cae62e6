"""Training hyperparameters: one typed record, filled from the CLI or from a SageMaker
training job's hyperparameters.json (where every value arrives as a string)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..classification import DEFAULT_SOURCE

MODES = ("head", "finetune", "full")
DEFAULT_BASE = DEFAULT_SOURCE  # the served classifier

# Per mode: epochs, the head's learning rate, and patience (epochs without a better
# validation score before stopping). A linear head on cached features costs milliseconds
# an epoch, so it gets many, and more patience; the pixel modes pay a forward pass per image.
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "head": {"epochs": 60, "learning_rate": 1e-3, "patience": 5},
    # The pixel modes start from the trained linear head, so their head needs a smaller
    # step: on Fashion-MNIST with 50 images a class, 1e-3 lost 0.05 validation accuracy to
    # the linear baseline in 3 epochs and 3e-4 lost 0.01 (noise); with 300 a class 1e-3
    # gained 0.013 and 3e-4 0.003.
    "finetune": {"epochs": 8, "learning_rate": 3e-4, "patience": 3},
    "full": {"epochs": 8, "learning_rate": 3e-4, "patience": 3},
}


class ConfigError(ValueError):
    """Hyperparameters that cannot be used; the message names each one and its range."""


@dataclass(frozen=True)
class Hyperparameters:
    name: str = "custom-classifier"  # the model's name (BentoML store, model card)
    mode: str = "head"
    base: str = DEFAULT_BASE  # source URI of the pretrained classifier to start from
    epochs: int | None = None  # None: the mode's default
    learning_rate: float | None = None  # the head's; None: the mode's default
    # The backbone's layers learn this much slower than the head (finetune, full): they
    # start from useful features and must not be wrecked by a fresh head's big gradients.
    backbone_lr_ratio: float = 0.1
    weight_decay: float = 1e-4
    batch_size: int = 64
    # Training and serving input: images are resized to image_size x image_size. None:
    # chosen from the data (models.finetune.images.choose_image_size).
    image_size: int | None = None
    finetune_blocks: int = 4  # finetune: the last N blocks (and the layers after them) train
    val_fraction: float = 0.2
    patience: int | None = None  # None: the mode's default
    min_per_class: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def problems(self) -> list[str]:
        checks = (
            (self.mode not in MODES, f"mode must be one of {', '.join(MODES)}, got {self.mode!r}"),
            (self.epochs is not None and self.epochs < 1, "epochs must be at least 1"),
            (self.learning_rate is not None and self.learning_rate <= 0, "learning_rate must be above 0"),
            (not 0 < self.backbone_lr_ratio <= 1, "backbone_lr_ratio must be in (0, 1]"),
            (self.weight_decay < 0, "weight_decay must not be negative"),
            (self.batch_size < 1, "batch_size must be at least 1"),
            (
                self.image_size is not None and not 32 <= self.image_size <= 1024,
                "image_size must be 32..1024",
            ),
            (self.finetune_blocks < 1, "finetune_blocks must be at least 1"),
            (not 0 < self.val_fraction < 1, "val_fraction must be between 0 and 1"),
            (self.patience is not None and self.patience < 1, "patience must be at least 1"),
            (self.min_per_class < 2, "min_per_class must be at least 2 (one to train, one to validate)"),
        )
        return [message for bad, message in checks if bad]

    @property
    def total_epochs(self) -> int:
        return self.epochs if self.epochs is not None else MODE_DEFAULTS[self.mode]["epochs"]

    @property
    def total_patience(self) -> int:
        return self.patience if self.patience is not None else MODE_DEFAULTS[self.mode]["patience"]

    @property
    def head_lr(self) -> float:
        return (
            self.learning_rate
            if self.learning_rate is not None
            else MODE_DEFAULTS[self.mode]["learning_rate"]
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """From a dict whose values may be strings (SageMaker passes hyperparameters.json
        values as strings); unknown keys are refused, so a typo is not silently ignored."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigError(f"unknown hyperparameters {', '.join(unknown)}; known: {', '.join(fields)}")
        parsed = {}
        for key, value in values.items():
            kind = fields[key].type
            try:
                parsed[key] = _parse(value, kind)
            except ValueError:
                raise ConfigError(f"hyperparameter {key}={value!r} is not a valid {kind}") from None
        return cls(**parsed)


def _parse(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "auto")):
        if "None" in kind:
            return None
        raise ValueError(value)
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    return str(value)
