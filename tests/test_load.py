"""Heavy and hostile conditions against a real `bentoml serve` of every task (issue 13):
a bounded mixed load of real requests from 32 clients, a model-service worker killed
under load, and SIGTERM while long requests are in flight.

Each server here is the test's own (the shared pais_server must survive the session):
these tests kill its processes. Figures (latency percentiles per endpoint, RSS, restart
and exit times) are printed; `pytest -s tests/test_load.py` shows them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import psutil
import pytest

from .images import CAT_LABELS
from .load import (
    CAR_SENTENCE,
    CLIENT_TIMEOUT_S,
    Call,
    Loop,
    Media,
    Outcome,
    Server,
    classify,
    classify_many,
    describe,
    error_body,
    get,
    latency_table,
    make_media,
    mix,
    recommend,
    rss_bytes,
    run_calls,
    second_pipelines,
    send,
    serve,
    stats_items,
    synthesize,
    synthesize_stream,
    translate,
    wait_exited,
)
from .servers import REPO, service_env

pytestmark = pytest.mark.server

CLIENTS = 32
CLASSIFY_CLIENTS = 8  # of the SIGKILL test
MB = 1024 * 1024
# RSS of all the server's processes after the measured run may exceed RSS before it (after
# a warm-up run of the same mix) by 15% plus 150 MB. Measured here: ~6.8 GB in 111
# processes after the warm-up, +155 to +354 MB after the run (five runs). Four runs of the
# mix in a row grew it by +300, +230, +100 MB, in the model services (batches of new peak
# sizes that the allocators keep), while the entry worker stayed flat (+12, +7, +1 MB):
# growth that slows down, not a leak. The margin (~1.2 GB) leaves room for a busier machine
# forming larger batches and still fails a leak of ~3 MB a request (an image kept).
RSS_GROWTH_SHARE = 0.15
RSS_GROWTH_BYTES = 150 * MB


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return make_media(tmp_path_factory.mktemp("load"))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """Every task, default settings (one entry worker, one worker per model service)."""
    with serve() as running:
        yield running


def summary(outcomes: list[Outcome]) -> str:
    statuses = Counter(o.status if o.status is not None else "no answer" for o in outcomes)
    return f"{len(outcomes)} requests, statuses {dict(statuses)}"


def test_mixed_load_has_no_5xx_and_memory_returns_to_its_level(server: Server, media: Media) -> None:
    """400 requests to every endpoint, 32 at a time: all answered 200 with the right
    content, health checks 200 throughout (SageMaker replaces an instance whose /ping
    fails), and RSS back within a margin of its level before the run."""
    # Warm-up: the same mix in another order, so that what is built on demand (batch
    # buffers of the sizes 32 clients form, the language identifier's tables) is in before
    # the baseline, and apertium's second pipeline per pair, which the mix may not start.
    # Its answers are judged by the same criteria.
    warm_up = run(server, second_pipelines() + mix(media, seed=1))
    processes_before = server.tree()
    rss_before = rss_bytes(processes_before)
    rss_limit = rss_before * (1 + RSS_GROWTH_SHARE) + RSS_GROWTH_BYTES

    calls = mix(media)
    started = time.monotonic()
    health = [get("/ping", lambda response: None), get("/readyz", lambda response: None)]
    with Loop(server.url, [health], pause_s=0.25) as health_checks:
        outcomes = run(server, calls)
    wall_s = time.monotonic() - started
    processes_after = server.tree()
    rss_after = rss_bytes(processes_after)

    checks = health_checks.snapshot()
    figures = (
        f"\n{summary(outcomes)} from {CLIENTS} clients in {wall_s:.1f} s\n{latency_table(outcomes)}\n"
        f"health checks meanwhile: {summary(checks)}, slowest {max(o.latency_s for o in checks):.2f} s\n"
        f"RSS: before {rss_before / MB:.0f} MB ({len(processes_before)} processes), "
        f"after {rss_after / MB:.0f} MB ({len(processes_after)} processes), "
        f"{(rss_after - rss_before) / MB:+.0f} MB; the limit {rss_limit / MB:.0f} MB"
    )
    print(figures)
    assert len(outcomes) == len(calls) == 400
    server_errors = [str(o) for o in outcomes if o.status is None or o.status >= 500]
    assert not server_errors, f"{len(server_errors)} 5xx or no answer: {server_errors[:5]}{figures}"
    failed = [str(o) for o in outcomes if o.status != 200 or o.error]
    assert not failed, f"{len(failed)} failed: {failed[:5]}{figures}"
    failed_warm_up = [str(o) for o in warm_up if o.status != 200 or o.error]
    assert not failed_warm_up, f"{len(failed_warm_up)} failed in the warm-up: {failed_warm_up[:5]}"
    unhealthy = [str(o) for o in checks if o.status != 200]
    assert checks and not unhealthy, f"health checks failed under load: {unhealthy[:5]}{figures}"
    documented = httpx.get(f"{server.url}/docs.json", timeout=30).json()["paths"]
    routes = {f"{method.upper()} {path}" for path, methods in documented.items() for method in methods}
    left_out = routes - {c.endpoint for c in calls}
    assert not left_out, f"routes the load leaves out (add them to tests/load.py mixed_calls): {left_out}"
    assert rss_after <= rss_limit, f"RSS grew past the margin{figures}"


def run(server: Server, calls: list[Call]) -> list[Outcome]:
    return run_calls(server.url, calls, CLIENTS)


def test_a_killed_model_worker_costs_only_its_requests_in_flight(server: Server, media: Media) -> None:
    """SIGKILL the classification worker while classify requests run: those in flight on
    it may fail, with 503 and Retry-After and nothing else; other tasks carry on; BentoML's
    arbiter starts a new worker and classify works again without anyone's help."""
    worker = server.model_worker("pais-classification")
    cat = classify(media.cat_jpeg, CAT_LABELS)
    others = [
        translate([CAR_SENTENCE], "es", "en", "coche nuevo"),
        recommend({"user_id": "7", "k": 5}, "personal"),
    ]

    def classified(seen: list[Outcome]) -> int:
        return sum(o.call is cat and o.status == 200 for o in seen)

    # 8 clients send classify back to back (so requests are in flight on the worker when
    # it dies), 4 send translate and recommend, which it does not serve.
    with Loop(server.url, [[cat]] * CLASSIFY_CLIENTS + [others] * 4) as load:
        assert load.wait_for(lambda seen: classified(seen) >= 16, 120), [str(o) for o in load.snapshot()[-5:]]
        signalled_epoch = time.time()
        worker.send_signal(signal.SIGKILL)
        # Dead (a zombie until the arbiter reaps it) means the kernel has closed its
        # sockets: a request sent from here on was never on the dead worker.
        assert not wait_exited([worker], 30)
        killed_at = time.monotonic()

        def after_kill(seen: list[Outcome]) -> list[Outcome]:
            return [o for o in seen if o.call is cat and o.started > killed_at and o.status == 200]

        # The arbiter starts a new worker as soon as it reaps the dead one; until the new
        # one has loaded its model, requests wait in the socket's backlog (the arbiter
        # holds the listening socket), so they are slow, not failed.
        assert load.wait_for(lambda seen: bool(after_kill(seen)), 240), "no recovery:\n" + server.log_tail()
        back_at = min(o.ended for o in after_kill(load.snapshot()))
        # more classify on the new worker, and more of the others meanwhile
        assert load.wait_for(lambda seen: len(after_kill(seen)) >= 16, 120)
    outcomes = load.snapshot()
    new_worker = server.model_worker("pais-classification")
    figures = (
        f"\nSIGKILL of pais-classification (pid {worker.pid}): new worker pid {new_worker.pid} started "
        f"{new_worker.create_time() - signalled_epoch:.1f} s after the kill, classify answered again "
        f"{back_at - killed_at:.1f} s after it; {summary(outcomes)}"
    )
    print(figures)
    assert new_worker.pid != worker.pid

    failed = [o for o in outcomes if o.status != 200 or o.error]
    # only classify requests fail, only with 503 and an error that says to retry...
    assert all(
        o.call is cat
        and o.status == 503
        and o.retry_after
        and "classification model service" in error_body(o).get("error", "")
        for o in failed
    ), [str(o) for o in failed] + [figures]
    # ...and only those in flight when the worker died: sent before, at most one a client
    assert all(o.started < killed_at for o in failed), [str(o) for o in failed]
    assert len(failed) <= CLASSIFY_CLIENTS, [str(o) for o in failed]
    served_meanwhile = [
        o for o in outcomes if o.call is not cat and killed_at < o.started < o.ended < back_at
    ]
    assert served_meanwhile, "no translate or recommend request was served while classification restarted"


# Long requests for the SIGTERM test, each seconds of work here: 12 sentences of speech,
# 48 images to classify (one at a time on a CPU), 20 texts of ~9,500 characters
# (apertium translates ~40,000 characters a second).
STORY = " ".join(f"This is sentence number {n} of the story." for n in range(1, 13))
LONG_TEXTS = [" ".join([CAR_SENTENCE] * 170)] * 20


def test_sigterm_lets_requests_in_flight_finish_then_every_process_exits(media: Media) -> None:
    """SIGTERM to the server (its process group, as tests/servers.stop and `docker stop`
    do) while long requests of every kind of runner are in flight: each must finish with a
    complete 200, a new request must not be served, and then every process the server had
    (arbiter, workers, apertium pipelines) must exit."""
    long_calls = {
        "synthesize": synthesize(STORY),
        "synthesize/stream": synthesize_stream(STORY),
        "classify": classify_many(media.cat_jpeg, 48),
        "translate": translate(LONG_TEXTS, "es", "en", "coche nuevo"),
    }
    outcomes: dict[str, Outcome] = {}
    with serve() as server:
        url = server.url
        processes = server.tree()
        (entry,) = [p for p in processes if "--service-name pais " in " ".join(p.cmdline()) + " "]

        def start(name: str) -> threading.Thread:
            def one() -> None:
                with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as client:
                    outcomes[name] = send(client, long_calls[name])

            thread = threading.Thread(target=one, name=name, daemon=True)
            thread.start()
            return thread

        # In flight, by signals rather than sleeps: each task's model has taken items of
        # the request into a batch (/stats counts them), and no answer has come back.
        before = {task: stats_items(url, task) for task in ("speech", "classification", "translation")}
        threads = [start(name) for name in long_calls]
        wait_until(lambda: stats_items(url, "speech") >= before["speech"] + 2, "both speech requests started")
        wait_until(lambda: stats_items(url, "classification") > before["classification"], "classify started")
        wait_until(lambda: stats_items(url, "translation") > before["translation"], "translate started")
        in_flight = sorted(name for name in long_calls if name not in outcomes)
        assert listens(entry, url)

        signalled_at = time.monotonic()
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            # The entry worker closes its listening socket when it starts shutting down; a
            # request sent after that must not be served (the arbiter's copy of the socket
            # may still take the connection; it is reset when the arbiter closes it).
            wait_until(lambda: not listens(entry, url), "the entry worker stopped listening", 60)
            with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as client:
                late = send(client, Call("GET /models", "GET", "/models"))
            for thread in threads:
                thread.join(CLIENT_TIMEOUT_S + 10)
            finished_at = time.monotonic()
            alive = wait_exited(processes, 120)
            exited_at = time.monotonic()
        finally:
            for process in processes:  # whatever outlived the test, not left to later tests
                with contextlib.suppress(psutil.Error):
                    process.kill()

    figures = (
        f"\nSIGTERM with {in_flight} in flight: answers {finished_at - signalled_at:.1f} s and "
        f"all {len(processes)} processes gone {exited_at - signalled_at:.1f} s after it; "
        f"a request sent after it: {late.status or late.error}; "
        + "; ".join(f"{name}: {outcomes[name]}" for name in sorted(outcomes))
    )
    print(figures)
    assert in_flight == ["classify", "synthesize", "synthesize/stream", "translate"], figures
    assert late.status is None, f"a request sent after SIGTERM was served: {late}{figures}"
    failed = {name: str(o) for name, o in outcomes.items() if o.status != 200 or o.error}
    assert not failed, f"requests in flight at SIGTERM did not finish: {failed}{figures}"
    assert not alive, f"still running 120 s after the last answer: {describe(alive)}{figures}"


def listens(process: psutil.Process, url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    try:
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in process.net_connections("tcp")
        )
    except psutil.NoSuchProcess:
        return False


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not seen within {timeout_s} s: {what}")
        time.sleep(0.05)


# An entry worker loads its runtimes in threads side by side (translation and
# recommendation by default): one may be importing torch while another's load_inline
# sets torch's threads. Here torch's import is held half way (before torch._C, where
# set_num_threads comes from) while the tiny reverse task loads inline, so the overlap is
# certain rather than likely; the hold ends when load_inline has returned or raised, or
# after 10 s (a load_inline that waits for torch's import lock waits that long).
TORCH_IMPORT_RACE = """
import importlib.abc, importlib.machinery, sys, threading
import service.gateway as gateway
from service.tasks import TASKS

task = TASKS.get("reverse")
gateway.load_task_runtime(task, gateway.settings)  # what the load imports is in beforehand
held, release = threading.Event(), threading.Event()


class HoldTorch(importlib.abc.MetaPathFinder):
    # torch.torch_version is found as usual; running it waits for `release`, while the
    # importing thread holds only the import locks of torch and of that module
    def find_spec(self, name, path=None, target=None):
        if name != "torch.torch_version":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        run = spec.loader.exec_module

        def exec_module(module):
            held.set()
            release.wait(60)
            run(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, HoldTorch())
importer = threading.Thread(target=lambda: __import__("torch"))
importer.start()
assert held.wait(300), "torch's import never reached torch.torch_version"
threading.Timer(10, release.set).start()
try:
    gateway.load_inline(task, gateway.settings)
finally:
    release.set()
    importer.join()
print("threads", sys.modules["torch"].get_num_threads())
"""


def test_an_inline_runtime_loads_while_another_thread_imports_torch() -> None:
    """A runtime that finishes loading while another loader thread is half way through
    importing torch must still load, with torch held to one thread. Seen under load: the
    entry worker's translation failed with 'partially initialized module torch has no
    attribute set_num_threads' and the server never became ready (fixed in 7ba0e05:
    load_inline imports torch, which waits for the import in progress)."""
    result = subprocess.run(
        [sys.executable, "-c", TORCH_IMPORT_RACE],
        env=service_env(
            PAIS_TASK_MODULES="tests.tiny_task", PAIS_TASKS="reverse", PAIS_REVERSE_SERVE_IN="entry"
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "threads 1"
