"""Load for tests/test_load.py: a server whose processes the test may signal, a catalogue
of real requests to every endpoint with a content check each, a pool of client threads
that records every outcome, latency percentiles, and the server's process tree (RSS,
model-service workers, exit)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from .client_media import side_by_side, write_cat_video
from .images import CAT_LABELS, COFFEE_LABELS, encode, photo
from .servers import REPO, _wait_ready, bentoml_serve, free_port, service_env, stop

# Longer than the server's request deadline (PAIS_REQUEST_TIMEOUT_S, 120 s by default): a
# request the server forgets shows up as a client timeout, never as a test that hangs.
CLIENT_TIMEOUT_S = 150
CAR_SENTENCE = "The weather is nice and I would like to buy a new car."


@dataclass
class Server:
    """A `bentoml serve` started here: its URL and the arbiter's Popen (the process the test
    may signal); the log file keeps what the server wrote, for failure messages."""

    url: str
    process: subprocess.Popen
    log: Path

    def tree(self) -> list[psutil.Process]:
        """The arbiter and every process under it: workers, apertium pipelines and their stages."""
        return process_tree(self.process.pid)

    def model_worker(self, service: str) -> psutil.Process:
        """The worker process of a model service, e.g. `pais-classification`."""
        for child in self.tree():
            with contextlib.suppress(psutil.Error):
                command = child.cmdline()
                if "--service-name" in command and command[command.index("--service-name") + 1] == service:
                    return child
        raise LookupError(f"no {service} worker under the arbiter {self.process.pid}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def serve(**env: str) -> Iterator[Server]:
    """`bentoml serve service.gateway:PAIS` on a free port (the default settings, overridden
    by `env`), ready when it is yielded; stopped afterwards like tests/servers.running_server
    does, if the test has not stopped it already."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="pais-load-", suffix=".log") as log:
        process = subprocess.Popen(
            bentoml_serve("service.gateway:PAIS", port),
            cwd=REPO,
            env=service_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(process, url + "/readyz", log.name, 300)
            yield Server(url, process, Path(log.name))
        finally:
            leftovers = process_tree(process.pid)
            stop(process)
            for child in leftovers:  # apertium stages too: stop() kills only what it saw when called
                with contextlib.suppress(psutil.Error):
                    child.kill()


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def rss_bytes(processes: list[psutil.Process]) -> int:
    """Resident memory of these processes together (shared pages counted in each, the
    same way before and after)."""
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def exited(process: psutil.Process) -> bool:
    """Gone (or its pid taken by another process), or a zombie (it has exited; only its
    parent's wait is missing)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_exited(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process has exited; those still running after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in processes if not exited(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def describe(processes: list[psutil.Process]) -> list[str]:
    described = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            described.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
    return described


# -- requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: `endpoint` names it in the figures; `check` raises AssertionError when
    a 200 answer's content is wrong (a cat that is not a cat)."""

    endpoint: str
    method: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)  # httpx: json=, files=, data=
    check: Callable[[httpx.Response], None] = lambda response: None


@dataclass
class Outcome:
    call: Call
    started: float  # time.monotonic() when the client began sending
    ended: float
    status: int | None = None  # None: no HTTP answer (the error says why)
    error: str = ""  # transport error, or the content check that failed
    retry_after: str | None = None
    body: str = ""  # error answers' body (JSON), kept for the failure message

    @property
    def latency_s(self) -> float:
        return self.ended - self.started

    def __str__(self) -> str:
        return f"{self.call.endpoint}: {self.status} {self.error or self.body[:200]}"


def send(client: httpx.Client, call: Call) -> Outcome:
    started = time.monotonic()
    try:
        response = client.request(call.method, call.path, **call.options)
    except httpx.HTTPError as error:
        return Outcome(call, started, time.monotonic(), error=repr(error))
    outcome = Outcome(call, started, time.monotonic(), response.status_code)
    outcome.retry_after = response.headers.get("retry-after")
    if response.status_code != 200:
        outcome.body = response.text
        return outcome
    try:
        call.check(response)
    except (AssertionError, ValueError, KeyError, IndexError, TypeError) as error:
        outcome.error = f"content check failed: {error!r}"
    return outcome


def run_calls(url: str, calls: list[Call], clients: int) -> list[Outcome]:
    """Every call once, `clients` at a time, each client thread with its own connection
    pool (keep-alive, as real clients); outcomes in the order of `calls`."""
    local = threading.local()
    opened: list[httpx.Client] = []
    lock = threading.Lock()

    def one(call: Call) -> Outcome:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S)
            with lock:
                opened.append(local.client)
        return send(local.client, call)

    try:
        with ThreadPoolExecutor(clients, thread_name_prefix="load") as pool:
            return list(pool.map(one, calls))
    finally:
        for client in opened:
            client.close()


class Loop:
    """Client threads that send their calls in turn until stopped, recording outcomes:
    background load while a test kills or stops something."""

    def __init__(self, url: str, calls_per_thread: list[list[Call]], pause_s: float = 0):
        self.url = url
        self.pause_s = pause_s
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(calls,), name=f"loop-{i}", daemon=True)
            for i, calls in enumerate(calls_per_thread)
        ]

    def _run(self, calls: list[Call]) -> None:
        with httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT_S) as client:
            for index in range(10**9):
                if self._stop.is_set():
                    return
                outcome = send(client, calls[index % len(calls)])
                with self._lock:
                    self.outcomes.append(outcome)
                if self.pause_s:
                    self._stop.wait(self.pause_s)

    def __enter__(self) -> Loop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(CLIENT_TIMEOUT_S + 30)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, predicate: Callable[[list[Outcome]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return True
            time.sleep(0.1)
        return False


# -- inputs and their checks ----------------------------------------------------------


@dataclass(frozen=True)
class Media:
    cat_jpeg: bytes
    coffee_jpeg: bytes
    scene_jpeg: bytes  # the cat and the coffee cup side by side, for the detector
    scene_size: tuple[int, int]
    video: bytes  # 3 s: the cat for 2 s, then the coffee


def make_media(folder: Path) -> Media:
    from PIL import Image

    scene, _ = side_by_side(["chelsea", "coffee"])
    return Media(
        cat_jpeg=encode(photo("chelsea"), "JPEG", quality=90),
        coffee_jpeg=encode(photo("coffee"), "JPEG", quality=90),
        scene_jpeg=scene,
        scene_size=Image.open(io.BytesIO(scene)).size,
        video=write_cat_video(folder / "cat-then-coffee.mp4").read_bytes(),
    )


def expect(condition: bool, what: Any) -> None:
    if not condition:
        raise AssertionError(what)


def top_label_in(labels: set[str]) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        (result,) = response.json()
        expect(result["predictions"][0]["label"] in labels, result["predictions"][:3])

    return check


def classify(image: bytes, labels: set[str]) -> Call:
    files = [("images", ("photo.jpg", image, "image/jpeg"))]
    return Call("POST /classify", "POST", "/classify", {"files": files}, top_label_in(labels))


def classify_many(image: bytes, count: int) -> Call:
    """One request of `count` copies of the cat photo: all cats."""

    def check(response: httpx.Response) -> None:
        labels = [result["predictions"][0]["label"] for result in response.json()]
        expect(len(labels) == count and set(labels) <= CAT_LABELS, labels)

    files = [("images", (f"{i}.jpg", image, "image/jpeg")) for i in range(count)]
    return Call("POST /classify", "POST", "/classify", {"files": files}, check)


def embed(media: Media) -> Call:
    """The cat twice and the coffee: 1280 floats each, the two cats alike, the coffee not."""

    def check(response: httpx.Response) -> None:
        import numpy as np

        vectors = [np.asarray(result["embedding"], dtype=np.float64) for result in response.json()]
        expect([len(v) for v in vectors] == [1280] * 3, [len(v) for v in vectors])
        unit = [v / np.linalg.norm(v) for v in vectors]
        same, different = float(unit[0] @ unit[1]), float(unit[0] @ unit[2])
        expect(same > 0.999 and different < same - 0.05, (same, different))

    images = [media.cat_jpeg, media.cat_jpeg, media.coffee_jpeg]
    files = [("images", (f"{i}.jpg", image, "image/jpeg")) for i, image in enumerate(images)]
    return Call("POST /embed", "POST", "/embed", {"files": files}, check)


def detect(media: Media) -> Call:
    def check(response: httpx.Response) -> None:
        (result,) = response.json()
        found = {d["label"] for d in result["detections"]}
        expect({"cat", "cup"} <= found, found)

    files = [("images", ("scene.jpg", media.scene_jpeg, "image/jpeg"))]
    return Call("POST /detect", "POST", "/detect", {"files": files}, check)


def detect_annotated(media: Media) -> Call:
    from PIL import Image

    def check(response: httpx.Response) -> None:
        expect(response.headers["content-type"] == "image/jpeg", response.headers["content-type"])
        expect(Image.open(io.BytesIO(response.content)).size == media.scene_size, "annotated size")

    files = [("image", ("scene.jpg", media.scene_jpeg, "image/jpeg"))]
    return Call("POST /detect/annotated", "POST", "/detect/annotated", {"files": files}, check)


def analyze_video(media: Media) -> Call:
    def check(response: httpx.Response) -> None:
        body = response.json()
        expect(abs(body["duration_s"] - 3.0) < 0.3, body["duration_s"])
        expect({"cat", "cup"} <= set(body["summary"]), body["summary"])

    files = [("video", ("clip.mp4", media.video, "video/mp4"))]
    options = {"files": files, "data": {"sample_fps": "2"}}
    return Call("POST /analyze_video", "POST", "/analyze_video", options, check)


def translate(texts: list[str], target: str, source: str, must_contain: str) -> Call:
    def check(response: httpx.Response) -> None:
        translations = response.json()["translations"]
        expect(len(translations) == len(texts), len(translations))
        expect(all(must_contain in t.lower() for t in translations), translations[0][:200])

    body = {"texts": texts, "target": target, "source": source}
    return Call("POST /translate", "POST", "/translate", {"json": body}, check)


def wav_check(text: str, streamed: bool) -> Callable[[httpx.Response], None]:
    """RIFF, 22.05 kHz 16-bit mono, and a length a voice plausibly takes to say `text`
    (0.04-0.15 s a character, as the speech tests bound it)."""

    def check(response: httpx.Response) -> None:
        audio = response.content
        expect(audio[:4] == b"RIFF" and response.headers["x-sample-rate"] == "22050", audio[:12])
        seconds = (len(audio) - 44) / 2 / 22050
        expect(0.04 * len(text) <= seconds <= 0.15 * len(text), seconds)
        if not streamed:
            expect(abs(seconds - float(response.headers["x-audio-duration"])) < 0.05, seconds)

    return check


def synthesize(text: str) -> Call:
    body = {"text": text}
    return Call("POST /synthesize", "POST", "/synthesize", {"json": body}, wav_check(text, False))


def synthesize_stream(text: str) -> Call:
    body = {"text": text}
    return Call(
        "POST /synthesize/stream", "POST", "/synthesize/stream", {"json": body}, wav_check(text, True)
    )


def recommend(body: dict[str, Any], strategy: str) -> Call:
    def check(response: httpx.Response) -> None:
        answer = response.json()
        expect(answer["strategy"] == strategy, answer["strategy"])
        expect(len(answer["items"]) == body["k"] and all(i["title"] for i in answer["items"]), answer)

    return Call("POST /recommend", "POST", "/recommend", {"json": body}, check)


def similar_items(item_id: str, k: int) -> Call:
    def check(response: httpx.Response) -> None:
        ids = [item["item_id"] for item in response.json()["items"]]
        expect(len(ids) == k and item_id not in ids, ids)

    body = {"item_id": item_id, "k": k}
    return Call("POST /similar_items", "POST", "/similar_items", {"json": body}, check)


def get(path: str, check: Callable[[httpx.Response], None]) -> Call:
    return Call(f"GET {path}", "GET", path, {}, check)


def _languages(response: httpx.Response) -> None:
    pairs = {(p["source"], p["target"]) for p in response.json()["pairs"]}
    expect({("en", "es"), ("es", "en"), ("en", "ca")} <= pairs, pairs)


def _voices(response: httpx.Response) -> None:
    expect([v["id"] for v in response.json()["voices"]] == ["en_US-joe-medium"], response.text[:200])


def _models(response: httpx.Response) -> None:
    tasks = {card["task"] for card in response.json()["models"]}
    expect({"classification", "detection", "translation", "speech", "recommendation"} <= tasks, tasks)


def _stats(response: httpx.Response) -> None:
    answer = response.json()
    expect(all("error" not in answer[task] for task in answer), answer)


def _health(response: httpx.Response) -> None:
    expect(response.status_code == 200, response.status_code)


def _execution_parameters(response: httpx.Response) -> None:
    expect(response.json()["BatchStrategy"] == "MULTI_RECORD", response.text)


def _docs(response: httpx.Response) -> None:
    expect("/classify" in response.json()["paths"], response.text[:200])


def _page(response: httpx.Response) -> None:
    expect(response.headers["content-type"].startswith("text/html"), response.headers["content-type"])
    expect("<html" in response.text.lower(), response.text[:200])


def invocation(image: bytes) -> Call:
    """SageMaker's /invocations with a raw JPEG: classify, the default operation."""
    options = {"content": image, "headers": {"content-type": "image/jpeg"}}
    return Call("POST /invocations", "POST", "/invocations", options, top_label_in(CAT_LABELS))


SPANISH = "Where is the train station? I would like to buy a new car."


def mixed_calls(media: Media) -> dict[str, list[Call]]:
    """Every endpoint with real inputs, by the share of a request mix each gets: image
    work and short texts most, videos and speech less (they cost the most per request)."""
    return {
        "classify": [classify(media.cat_jpeg, CAT_LABELS), classify(media.coffee_jpeg, COFFEE_LABELS)],
        "embed": [embed(media)],
        "detect": [detect(media)],
        "detect_annotated": [detect_annotated(media)],
        "analyze_video": [analyze_video(media)],
        "translate": [
            translate([CAR_SENTENCE], "es", "en", "coche nuevo"),
            translate([CAR_SENTENCE, SPANISH], "es", "auto", "me gustaría comprar"),
            translate(["Me gustaría comprar un coche nuevo."], "en", "es", "new car"),
            translate([CAR_SENTENCE], "ca", "en", "m'agradaria"),
        ],
        "synthesize": [
            synthesize("Hello there. How are you today?"),
            synthesize("The train leaves at noon."),
        ],
        "synthesize_stream": [synthesize_stream("Good morning. The weather is lovely today.")],
        "recommend": [
            recommend({"user_id": "1", "k": 5}, "personal"),
            recommend({"user_id": "42", "k": 10}, "personal"),
            recommend({"query": "animated film for children", "k": 5}, "content"),
        ],
        "similar_items": [similar_items("1", 4), similar_items("50", 6)],
        "get": [
            get("/translate/languages", _languages),
            get("/voices", _voices),
            get("/models", _models),
            get("/stats", _stats),
            get("/readyz", _health),
            get("/livez", _health),
            get("/ping", _health),
            get("/execution-parameters", _execution_parameters),
            get("/docs.json", _docs),
            get("/ui", _page),
        ],
        "invocations": [invocation(media.cat_jpeg)],
    }


def second_pipelines() -> list[Call]:
    """A text of 20 short sentences per language pair of the mix: apertium splits a batch of
    16 or more sentences across two pipelines, so each pair's second pipeline (~13
    processes, started on demand) starts. For the warm-up: the mix alone may not."""
    return [
        translate([" ".join(["The dog eats bread."] * 20)], "es", "en", "perro"),
        translate([" ".join(["El perro come pan."] * 20)], "en", "es", "dog"),
        translate([" ".join(["The dog eats bread."] * 20)], "ca", "en", "gos"),
    ]


# requests of each group in a mix of 400 (the 400 the figures are for)
MIX = {
    "classify": 56,
    "embed": 8,
    "detect": 40,
    "detect_annotated": 20,
    "analyze_video": 8,
    "translate": 64,
    "synthesize": 24,
    "synthesize_stream": 16,
    "recommend": 60,
    "similar_items": 32,
    "get": 64,
    "invocations": 8,
}


def mix(media: Media, scale: float = 1.0, seed: int = 13) -> list[Call]:
    """The request mix (MIX times `scale`), each group cycling through its variants, in an
    order shuffled with a fixed seed so that every run interleaves the tasks the same way."""
    groups = mixed_calls(media)
    calls = [
        groups[group][index % len(groups[group])]
        for group, count in MIX.items()
        for index in range(max(1, round(count * scale)))
    ]
    random.Random(seed).shuffle(calls)
    return calls


# -- figures --------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p99 of 40 values is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_table(outcomes: list[Outcome]) -> str:
    """Per endpoint: requests, p50 and p99 latency, and the answers other than 200."""
    by_endpoint: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_endpoint.setdefault(outcome.call.endpoint, []).append(outcome)
    width = max(len(name) for name in by_endpoint)
    lines = [f"{'endpoint':<{width}}  {'n':>4}  {'p50 ms':>8}  {'p99 ms':>8}  not 200"]
    for name, group in sorted(by_endpoint.items()):
        values = [o.latency_s for o in group]
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        others = Counter(str(o.status) for o in group if o.status != 200)
        lines.append(f"{name:<{width}}  {len(values):>4}  {p50:>8.0f}  {p99:>8.0f}  {dict(others) or ''}")
    return "\n".join(lines)


def stats_items(url: str, task: str) -> int:
    """Items a task's model has taken into batches so far (GET /stats): a task that counts
    more than before has work of a request in progress or done."""
    answer = httpx.get(f"{url}/stats", timeout=30).json()[task]
    if "error" in answer:
        raise AssertionError(f"/stats of {task}: {answer}")
    return sum(int(size) * count for size, count in answer["predict_batch"].items())


def error_body(outcome: Outcome) -> dict[str, Any]:
    try:
        body = json.loads(outcome.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
