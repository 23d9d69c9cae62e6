"""The sandbox supervisor with real child processes that really abort, segfault and hang
(tests/sandbox_workers.py): what each costs, and that the next call finds a warm child."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from models.errors import ItemError
from models.sandbox import ChildDied, ChildStartError, ChildTimeout, Sandbox, WorkerSpec

PROBE = WorkerSpec("tests.sandbox_workers:Probe", {"greeting": "hi"})


@pytest.fixture
def sandbox():
    with Sandbox(PROBE, name="probe") as sandbox:
        assert sandbox.wait_for_spares()
        yield sandbox


def test_a_call_runs_the_worker_in_another_process(sandbox):
    assert sandbox.call("greet", "ada", timeout_s=10) == "hi ada"
    assert sandbox.call("pid", timeout_s=10) != os.getpid()
    assert sandbox.call("echo", {"bytes": b"\0" * 100_000}, timeout_s=10) == {"bytes": b"\0" * 100_000}


def test_the_workers_own_errors_come_back_as_they_were_raised(sandbox):
    started = sandbox.stats["started"]
    with pytest.raises(ItemError) as caught:
        sandbox.call("item", "refuse", timeout_s=10)
    assert caught.value.kind == "invalid" and "refused" in caught.value.message
    assert sandbox.call("greet", "again", timeout_s=10) == "hi again"
    assert sandbox.stats["started"] == started  # the child that raised serves on


@pytest.mark.parametrize(("method", "signal_name"), [("abort", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_a_crash_is_an_error_of_that_call_and_the_next_call_finds_a_warm_child(sandbox, method, signal_name):
    with pytest.raises(ChildDied, match=signal_name) as caught:
        sandbox.call("item", method, timeout_s=10)
    assert caught.value.kind == "unprocessable"
    assert sandbox.call("greet", "again", timeout_s=10) == "hi again"
    assert sandbox.stats["cold_starts"] == 0  # the spare served it: no start on the request's path


def test_a_hang_is_stopped_at_its_timeout(sandbox):
    hung = sandbox.children()[0]
    with pytest.raises(ChildTimeout, match=r"within 0\.5 s") as caught:
        sandbox.call("item", "hang", timeout_s=0.5)
    assert caught.value.kind == "timeout"
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)  # killed and reaped, not left running
    assert sandbox.call("greet", "again", timeout_s=10) == "hi again"
    assert sandbox.stats["cold_starts"] == 0


def test_map_pins_each_failure_on_its_item_and_answers_the_others(sandbox):
    items = ["a", "abort", "b", "segfault", "c", "refuse", "hang", "d"]
    results = sandbox.map("item", items, timeout_s=1)
    assert results[0::2] == ["A", "B", "C", results[6]] and results[7] == "D"
    assert isinstance(results[1], ChildDied) and "SIGABRT" in str(results[1])
    assert isinstance(results[3], ChildDied) and "SIGSEGV" in str(results[3])
    assert isinstance(results[5], ItemError) and results[5].kind == "invalid"
    assert isinstance(results[6], ChildTimeout)
    # an item that crashes a child mid-batch is tried once more, first on another child
    # (so state left by the items before it is not blamed on it): two deaths each
    assert sandbox.stats["ChildDied"] == 4 and sandbox.stats["ChildTimeout"] == 1


def test_a_worker_that_retires_is_not_reused(sandbox):
    before = sandbox.call("pid", timeout_s=10)
    assert sandbox.map("item", ["dirty", "x"], timeout_s=10) == ["DIRTY", "X"]
    assert sandbox.stats["retired"] == 1
    assert before not in sandbox.children()
    assert sandbox.call("calls_so_far", timeout_s=10) <= 2  # a child that had not served "dirty"


def test_state_never_crosses_calls_with_a_fresh_child_per_call():
    with Sandbox(PROBE, name="probe", max_uses=1) as fresh:
        assert [fresh.call("calls_so_far", timeout_s=10) for _ in range(3)] == [1, 1, 1]
    with Sandbox(PROBE, name="probe") as reused:
        assert [reused.call("calls_so_far", timeout_s=10) for _ in range(3)] == [1, 2, 3]


def test_a_stream_stops_when_its_consumer_stops(sandbox, tmp_path):
    progress = tmp_path / "progress"
    assert list(sandbox.stream("count", 5, str(progress), timeout_s=10)) == [0, 1, 2, 3, 4]
    stream = sandbox.stream("count", 1000, str(progress), timeout_s=10)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()
    assert int(progress.read_text()) <= 3  # what was read, plus at most one made ahead


def test_a_child_killed_while_idle_is_replaced_without_failing_a_call(sandbox):
    for pid in sandbox.children():
        os.kill(pid, signal.SIGKILL)
        _wait_until_dead(pid)
    assert sandbox.call("greet", "after", timeout_s=10) == "hi after"


def _wait_until_dead(pid: int) -> None:
    """Until `pid` is a zombie with no thread left: killed, not yet reaped by the sandbox.
    The main thread shows "Z" while the child's other threads may still be exiting and
    holding its pipes open (a write then still succeeds); only once they are gone is
    the child as dead as one the sandbox would find long after a kill."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        if zombie and len(os.listdir(f"/proc/{pid}/task")) == 1:
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} still runs")


def test_a_memory_limit_fails_the_call_not_the_service():
    spec = WorkerSpec("tests.sandbox_workers:Probe", memory_limit_mb=1024)
    with Sandbox(spec, name="probe") as limited:
        assert limited.call("allocate", 10, timeout_s=30) == 10 * 1024 * 1024
        with pytest.raises(MemoryError):
            limited.call("allocate", 4096, timeout_s=30)
        assert limited.call("allocate", 10, timeout_s=30) == 10 * 1024 * 1024


def test_a_worker_that_cannot_start_is_a_start_error():
    spec = WorkerSpec("tests.sandbox_workers:broken_factory")
    with (
        Sandbox(spec, name="broken", spares=0) as broken,
        pytest.raises(ChildStartError, match=r"libexample\.so"),
    ):
        broken.call("greet", "x", timeout_s=10)


def test_concurrent_callers_each_get_a_child(sandbox):
    results: dict[int, object] = {}

    def caller(index: int) -> None:
        results[index] = sandbox.map("item", [f"x{index}", "abort" if index == 2 else "y"], timeout_s=10)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(4):
        assert results[index][0] == f"X{index}"
        assert isinstance(results[index][1], ChildDied) if index == 2 else results[index][1] == "Y"


def test_closing_stops_every_child():
    sandbox = Sandbox(PROBE, name="probe", spares=2)
    assert sandbox.wait_for_spares()
    pids = sandbox.children()
    sandbox.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
