"""Which engine serves which language pair, and routes through English when allowed."""

from __future__ import annotations

from dataclasses import dataclass

from .engine import Engine, Pair

PIVOT = "en"


@dataclass(frozen=True)
class Hop:
    source: str
    target: str
    model: str
    engine: Engine


class Router:
    def __init__(self, engines: list[Engine], allow_pivot: bool = False):
        self.allow_pivot = allow_pivot
        self.direct: dict[Pair, Hop] = {}
        for engine in engines:  # listed first, served first
            for (source, target), model in engine.pairs.items():
                self.direct.setdefault((source, target), Hop(source, target, model, engine))

    def route(self, source: str, target: str) -> list[Hop] | None:
        """The hops from source to target; [] when they are the same; None when unserved."""
        if source == target:
            return []
        if (source, target) in self.direct:
            return [self.direct[(source, target)]]
        if self.allow_pivot and (source, PIVOT) in self.direct and (PIVOT, target) in self.direct:
            return [self.direct[(source, PIVOT)], self.direct[(PIVOT, target)]]
        return None

    def pairs(self) -> dict[Pair, list[Hop]]:
        """Every servable pair with its route (pivot routes only when allowed)."""
        routes: dict[Pair, list[Hop]] = {pair: [hop] for pair, hop in self.direct.items()}
        if self.allow_pivot:
            sources = {s for s, _ in self.direct}
            targets = {t for _, t in self.direct}
            for source in sorted(sources):
                for target in sorted(targets):
                    if source != target and (source, target) not in routes:
                        route = self.route(source, target)
                        if route:
                            routes[(source, target)] = route
        return dict(sorted(routes.items()))
