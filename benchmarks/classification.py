"""Classification throughput: the raw runtime against the served endpoint, in one run.

    .venv/bin/python -m benchmarks.classification [--url http://host:3000] [--seconds 10]

Prints raw runtime images/s at batch 1 and 16 (JPEG bytes in: decode + preprocess +
forward), the service's images/s with 1 and 16 concurrent clients sending one 640x480
JPEG per request, each as a ratio to raw batch 16, and the batch sizes the server formed.
Client and server share this machine's cores, so the service figures include the load
generator's own cost.
"""

from __future__ import annotations

import os

import httpx

from benchmarks.common import Measurement, http_load, parser, report, served, timed
from models.classification import ImageClassifier
from service.settings import get_settings
from tests.images import encode, photo


def test_image() -> bytes:
    from PIL import Image

    return encode(Image.fromarray(photo("coffee")).resize((640, 480)), "JPEG", quality=90)


def raw_runtime() -> ImageClassifier:
    """The configured classifier, loaded in this process as the service would load it."""
    settings = get_settings()
    runtime = ImageClassifier.load(
        settings.classification_model, device=settings.device, dtype=settings.dtype
    )
    print(f"model {runtime.info.name} on {runtime.placement.describe()}, {os.cpu_count()} CPUs")
    return runtime


def main() -> None:
    args = parser(__doc__).parse_args()
    jpeg = test_image()
    runtime = raw_runtime()
    raw1 = timed("raw runtime, batch 1", 1, lambda: runtime.classify_many([jpeg], 5), args.seconds)
    raw16 = timed("raw runtime, batch 16", 16, lambda: runtime.classify_many([jpeg] * 16, 5), args.seconds)

    async def one_image(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(url + "/classify", files=[("images", ("x.jpg", jpeg, "image/jpeg"))])

    rows: list[Measurement] = [raw1, raw16]
    with served(args.url) as url:
        before = httpx.get(url + "/stats").json()["classification"].get("classify_batch", {})
        rows.append(http_load("service, 1 client, 1 image/request", 1, args.seconds, 1, one_image))
        middle = httpx.get(url + "/stats").json()["classification"]["classify_batch"]
        rows.append(http_load("service, 16 clients, 1 image/request", 16, args.seconds, 1, one_image))
        after = httpx.get(url + "/stats").json()["classification"]["classify_batch"]
    report("classification", "img", raw16, rows)
    for label, start, end in (("1 client", before, middle), ("16 clients", middle, after)):
        formed = {int(k): v - start.get(k, 0) for k, v in end.items() if v - start.get(k, 0)}
        batches = sum(formed.values())
        average = sum(k * v for k, v in formed.items()) / batches if batches else 0
        sizes = dict(sorted(formed.items()))
        print(f"batches formed with {label}: {batches}, mean size {average:.1f}, sizes {sizes}")


if __name__ == "__main__":
    main()
