"""Start-up checks that fail fast: `python -m service.preflight` exits 2 with the reasons.

BentoML restarts a model worker whose start-up fails, forever, and the server never exits
(seen with PAIS_DEVICE=no-such-device: 36 restarts a minute). In a container that turns a
misconfiguration into a health check that times out many minutes later, so the container
entrypoint runs these checks first: settings that do not parse, and a device or dtype that
this machine cannot provide (a GPU image on a host whose driver cannot run its CUDA).
"""

from __future__ import annotations

import sys

from .settings import Settings


def problems() -> list[str]:
    try:
        settings = Settings.from_env()
    except ValueError as error:
        return [str(error)]
    from models.device import choose_placement

    try:
        choose_placement(settings.device, settings.dtype)
    except (ValueError, RuntimeError) as error:
        return [f"PAIS_DEVICE={settings.device!r} PAIS_DTYPE={settings.dtype!r}: {error}"]
    return []


def main() -> int:
    found = problems()
    for problem in found:
        print(f"pais preflight: {problem}", file=sys.stderr, flush=True)
    return 2 if found else 0


if __name__ == "__main__":
    sys.exit(main())
