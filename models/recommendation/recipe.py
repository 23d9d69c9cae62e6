"""How a recommender is trained and measured: iALS hyper-parameters and the hold-out split.
Plain data (no torch), so the training CLI can parse its options before loading torch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Bump when a change to the training code changes the model a recipe produces: stored
# models record it, so `make models` knows when to retrain.
TRAINER_VERSION = 1


@dataclass(frozen=True)
class IALSConfig:
    factors: int = 64
    regularization: float = 30.0
    alpha: float = 3.0  # an observed interaction has confidence 1 + alpha
    iterations: int = 15
    cg_steps: int = 3
    seed: int = 0


@dataclass(frozen=True)
class Holdout:
    fraction: float = 0.2
    min_user_items: int = 5
    k: int = 10
    max_users: int = 20_000  # users evaluated at most (a seeded sample beyond)
    seed: int = 0

    def describe(self, timed: bool) -> str:
        order = "most recent" if timed else "a random (seeded)"
        return (
            f"per user, {order} {self.fraction:.0%} of items held out "
            f"(users with at least {self.min_user_items} items)"
        )


@dataclass(frozen=True)
class Recipe:
    ials: IALSConfig = field(default_factory=IALSConfig)
    holdout: Holdout = field(default_factory=Holdout)

    def to_dict(self) -> dict[str, Any]:
        return {"trainer": TRAINER_VERSION, "ials": asdict(self.ials), "holdout": asdict(self.holdout)}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
