"""Batch jobs (`pais batch`, `pais.batch.run_batch`) against a real server that requires an
API key: folders, JSONL and S3 (moto's server) in and out, bad files in multi-image
requests, resuming after SIGKILL and after torn or failed lines, memory on a long job."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pais import RetryPolicy
from pais.batch import JobAborted, run_batch
from pais.batch.s3 import s3_client

from .client_media import side_by_side, write_cat_video
from .images import CAT_LABELS, COFFEE_LABELS, encode, photo
from .scripted_server import Answer, ScriptedServer, Seen
from .servers import BIN, bentoml_serve, free_port, running_server, service_env

pytestmark = pytest.mark.server
API_KEY = "batch-test-key"
MAX_IMAGES = 8  # the server's PAIS_CLASSIFICATION_MAX_IMAGES: below the SDK's default batch of 16


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    env = service_env(
        PAIS_API_KEYS=API_KEY,
        PAIS_CLASSIFICATION_MAX_IMAGES=str(MAX_IMAGES),
        PAIS_DETECTION_MAX_IMAGES=str(MAX_IMAGES),
    )
    with running_server(bentoml_serve("service.gateway:PAIS", port), port, env) as url:
        yield url


def small_photos(name: str, count: int) -> Iterator[bytes]:
    """`count` different small JPEGs of one photo (sizes and qualities vary)."""
    from PIL import Image

    image = Image.fromarray(photo(name))
    for index in range(count):
        width = 150 + (index % 7) * 10
        scaled = image.resize((width, width * image.height // image.width))
        yield encode(scaled, "JPEG", quality=70 + index % 25)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """300 photos: cats/ and coffee/ (ids "cats/000.jpg", ...)."""
    root = tmp_path_factory.mktemp("photos")
    for name, folder in (("chelsea", "cats"), ("coffee", "coffee")):
        (root / folder).mkdir()
        for index, data in enumerate(small_photos(name, 150)):
            (root / folder / f"{index:03d}.jpg").write_bytes(data)
    return root


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def check_labels(entry: dict[str, Any]) -> None:
    expected = CAT_LABELS if "cat" in entry["id"] else COFFEE_LABELS
    assert expected & {p["label"] for p in entry["result"]["predictions"]}, entry


def pais_batch(*args: str) -> list[str]:
    return [str(BIN / "pais"), "batch", *args, "--no-progress"]


def batch_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PAIS_API_KEY": API_KEY, **extra}


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_when(process: subprocess.Popen, path: Path, at_least: int, timeout_s: float = 300) -> int:
    """SIGKILL `process` once `path` has `at_least` lines; the line count at the kill."""
    deadline = time.monotonic() + timeout_s
    while count_lines(path) < at_least:
        assert process.poll() is None, f"the job ended before the kill: {process.stderr.read()}"
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return count_lines(path)


# -- the kill test --------------------------------------------------------------------


def test_killed_twice_then_resumed_every_record_exactly_once(server, photos, tmp_path):
    out = tmp_path / "labels.jsonl"
    command = pais_batch(
        "classify", str(photos), "--out", str(out), "--url", server, "--concurrency", "4", "-o", "top_k=5"
    )
    for kill_at in (60, 170):
        process = subprocess.Popen(
            command, env=batch_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert kill_when(process, out, kill_at) < 300
    finished = subprocess.run(command, env=batch_env(), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    entries = lines(out)  # every line parses: no torn line survived
    ids = [entry["id"] for entry in entries]
    expected = {f"{folder}/{index:03d}.jpg" for folder in ("cats", "coffee") for index in range(150)}
    assert len(ids) == len(set(ids)) == 300 and set(ids) == expected
    assert all(entry["ok"] for entry in entries)
    for entry in entries:
        check_labels(entry)
    skipped = int(finished.stderr.split("skipped")[1].split()[0])
    assert 170 <= skipped < 300, finished.stderr  # the rerun did only what was left


# -- splitting rejected requests, adapting to limits ----------------------------------


def test_a_bad_file_costs_only_itself(server, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, data in enumerate(small_photos("chelsea", 14)):
        (folder / f"cat-{index:02d}.jpg").write_bytes(data)
    (folder / "not-an-image.jpg").write_bytes(b"a text file with an image's name")
    cat = encode(photo("chelsea"), "JPEG")
    (folder / "truncated.jpg").write_bytes(cat[: len(cat) // 3])  # its header is fine: the model finds it
    out = tmp_path / "out.jsonl"
    summary = run_batch(
        "classify", str(folder), str(out), url=server, api_key=API_KEY, batch_size=8, progress=False
    )
    assert (summary.done, summary.failed) == (14, 2)
    by_id = {entry["id"]: entry for entry in lines(out)}
    assert len(by_id) == 16
    assert by_id["not-an-image.jpg"]["error"]["status"] == 415
    assert by_id["truncated.jpg"]["error"]["status"] == 400
    for name in ("not-an-image.jpg", "truncated.jpg"):
        error = by_id[name]["error"]
        assert error["retryable"] is False and error["detail"][0]["index"] == 0  # its own request's error
    # two groups of 8; a rejected group costs one request more per bad file, plus the rest
    assert summary.requests <= 2 + 2 * 2
    for entry in by_id.values():
        if entry["ok"]:
            check_labels(entry)


def test_the_batch_size_adapts_to_the_servers_limit(server, photos, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run_batch(
        "classify", str(photos / "cats"), str(out), url=server, api_key=API_KEY, concurrency=2, progress=False
    )
    assert (summary.done, summary.failed) == (150, 0)  # 16 per request is over the limit of 8
    assert summary.requests < 150 / MAX_IMAGES + 12  # after the first 413s, requests of 8


# -- resuming: torn lines, retryable failures, duplicates -----------------------------


def test_resume_redoes_torn_and_retryable_lines_only(server, photos, tmp_path):
    out = tmp_path / "out.jsonl"
    run_batch("classify", str(photos / "coffee"), str(out), url=server, api_key=API_KEY, progress=False)
    entries = lines(out)
    server_trouble = entries[3]["id"]
    entries[3] = {"id": server_trouble, "ok": False, "error": {"error": "503: busy", "retryable": True}}
    torn = entries[-1]["id"]
    data = b"".join(json.dumps(entry).encode() + b"\n" for entry in entries)
    out.write_bytes(data[: len(data) - 25])  # the last line cut short, as by a kill mid-write
    summary = run_batch(
        "classify", str(photos / "coffee"), str(out), url=server, api_key=API_KEY, progress=False
    )
    assert (summary.done, summary.failed, summary.skipped) == (2, 0, 148)
    final = lines(out)
    assert sorted(entry["id"] for entry in final) == sorted(entry["id"] for entry in entries)
    assert all(entry["ok"] for entry in final)
    assert {entry["id"] for entry in final[-2:]} == {server_trouble, torn}


def test_jsonl_records(server, tmp_path):
    cat = encode(photo("chelsea"), "JPEG")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "cat.jpg").write_bytes(cat)
    coffee_path = tmp_path / "coffee.png"
    coffee_path.write_bytes(encode(photo("coffee"), "PNG"))
    records = [
        {"id": "relative", "image": "images/cat.jpg"},
        {"id": "absolute", "image": str(coffee_path), "top_k": 1},
        {"id": 7, "image_base64": base64.b64encode(cat).decode()},
        {"id": "both", "image": "images/cat.jpg", "image_base64": "AAAA"},
        {"id": "bad-base64", "image_base64": "@@@"},
        {"id": "missing-file", "image": "images/nope.jpg"},
        {"id": "unknown-option", "image": "images/cat.jpg", "colour": "red"},
        {"image": "images/cat.jpg"},
        {"id": "relative", "image": "images/cat.jpg"},
    ]
    source = tmp_path / "records.jsonl"
    text = "\n".join(json.dumps(record) for record in records) + "\nthis line is not JSON\n\n"
    source.write_text(text)
    out = tmp_path / "out.jsonl"
    summary = run_batch("classify", str(source), str(out), url=server, api_key=API_KEY, progress=False)
    by_id = {entry["id"]: entry for entry in lines(out)}
    assert summary.duplicates == 1 and (summary.done, summary.failed) == (3, 6) and len(by_id) == 9
    assert by_id["relative"]["result"]["predictions"][0]["label"] in CAT_LABELS
    assert len(by_id["absolute"]["result"]["predictions"]) == 1
    assert by_id["7"]["ok"]
    assert "exactly one" in by_id["both"]["error"]["error"]
    assert "base64" in by_id["bad-base64"]["error"]["error"]
    assert "no such file" in by_id["missing-file"]["error"]["error"]
    assert "colour" in by_id["unknown-option"]["error"]["error"]
    assert '"id"' in by_id["#line-8"]["error"]["error"]
    assert "not JSON" in by_id["#line-10"]["error"]["error"]
    # a rerun redoes the missing file (an input that may appear), not the bad records
    again = run_batch("classify", str(source), str(out), url=server, api_key=API_KEY, progress=False)
    assert (again.done, again.failed, again.skipped, again.skipped_failed) == (
        0,
        1,
        9,
        5,
    )  # 9: with the repeat
    retried = run_batch(
        "classify", str(source), str(out), url=server, api_key=API_KEY, progress=False, retry_failed=True
    )
    assert retried.failed == 6 and len(lines(out)) == 9  # all failures redone, still once each


def test_wrong_api_key_stops_the_job_and_writes_nothing(server, photos, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run_batch(
        "classify", str(photos / "cats"), str(out), url=server, api_key="wrong", progress=False
    )
    assert summary.aborted and "401" in summary.aborted and summary.done == summary.failed == 0
    assert count_lines(out) == 0
    cli = subprocess.run(
        pais_batch("classify", str(photos / "cats"), "--out", str(out), "--url", server),
        env=batch_env(PAIS_API_KEY="wrong"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1 and "401" in cli.stderr


def test_a_second_job_on_the_same_output_is_refused(tmp_path):
    from pais.batch.journal import Journal, JournalLocked

    first = Journal(tmp_path / "out.jsonl")
    first.open(lambda entry: True)
    with pytest.raises(JournalLocked):
        Journal(tmp_path / "out.jsonl").open(lambda entry: True)
    first.close()
    Journal(tmp_path / "out.jsonl").open(lambda entry: True)


# -- S3 in and out (moto's server) ----------------------------------------------------


@pytest.fixture
def bucket(moto_endpoint) -> str:
    s3_client.cache_clear()  # a client for moto's endpoint
    name = f"pais-batch-{free_port()}"
    s3_client().create_bucket(Bucket=name)
    return name


def put_photos(bucket: str, prefix: str, cats: int, coffees: int) -> set[str]:
    keys = set()
    for name, count in (("chelsea", cats), ("coffee", coffees)):
        for index, data in enumerate(small_photos(name, count)):
            key = f"{'cats' if name == 'chelsea' else 'coffee'}/{index:03d}.jpg"
            s3_client().put_object(Bucket=bucket, Key=prefix + key, Body=data)
            keys.add(key)
    s3_client().put_object(Bucket=bucket, Key=prefix + "notes.txt", Body=b"not an image: not taken")
    return keys


def s3_output(bucket: str, prefix: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifest = json.loads(s3_client().get_object(Bucket=bucket, Key=prefix + "_manifest.json")["Body"].read())
    entries = []
    for uri in manifest["parts"]:
        key = uri.split("/", 3)[3]
        entries += [
            json.loads(line) for line in s3_client().get_object(Bucket=bucket, Key=key)["Body"].iter_lines()
        ]
    return manifest, entries


def test_s3_prefix_in_s3_prefix_out(server, bucket, tmp_path):
    ids = put_photos(bucket, "in/", 12, 9)

    def classify(state: str, **options: Any) -> Any:
        source, output = f"s3://{bucket}/in/", f"s3://{bucket}/out/"
        state_dir = str(tmp_path / state)
        return run_batch(
            "classify",
            source,
            output,
            url=server,
            api_key=API_KEY,
            progress=False,
            state_dir=state_dir,
            **options,
        )

    summary = classify("state", part_records=5)
    assert (summary.done, summary.failed, summary.total) == (21, 0, 21)
    manifest, entries = s3_output(bucket, "out/")
    assert manifest["complete"] is True and manifest["ok"] == 21 and manifest["task"] == "classify"
    assert len(manifest["parts"]) >= 5  # parts of at most 5 lines
    assert sorted(entry["id"] for entry in entries) == sorted(ids)
    for entry in entries:
        check_labels(entry)
    assert not list((tmp_path / "state").glob("segment-*.jsonl"))  # everything committed
    again = classify("state-elsewhere")  # another machine: the parts say what is done
    assert again.skipped == 21 and again.done == 0


def test_s3_jsonl_in_local_out(server, bucket, tmp_path):
    cat = encode(photo("chelsea"), "JPEG")
    s3_client().put_object(Bucket=bucket, Key="data/img/cat.jpg", Body=cat)
    records = [
        {"id": "beside", "image": "img/cat.jpg"},
        {"id": "uri", "image": f"s3://{bucket}/data/img/cat.jpg", "top_k": 2},
        {"id": "missing", "image": "img/nope.jpg"},
    ]
    body = "\n".join(json.dumps(record) for record in records).encode()
    s3_client().put_object(Bucket=bucket, Key="data/records.jsonl", Body=body)
    out = tmp_path / "out.jsonl"
    summary = run_batch(
        "classify", f"s3://{bucket}/data/records.jsonl", str(out), url=server, api_key=API_KEY, progress=False
    )
    by_id = {entry["id"]: entry for entry in lines(out)}
    assert (summary.done, summary.failed) == (2, 1)
    assert by_id["beside"]["result"]["predictions"][0]["label"] in CAT_LABELS
    assert len(by_id["uri"]["result"]["predictions"]) == 2
    assert by_id["missing"]["error"]["retryable"] is True  # an S3 read error may pass


def test_s3_output_killed_then_resumed_exactly_once(server, bucket, tmp_path):
    ids = put_photos(bucket, "kill/", 60, 60)
    state = tmp_path / "state"
    command = pais_batch(
        "classify", f"s3://{bucket}/kill/", "--out", f"s3://{bucket}/kill-out/", "--url", server,
        "--state-dir", str(state), "--part-records", "10", "--concurrency", "4",
    )  # fmt: skip
    process = subprocess.Popen(command, env=batch_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (s3_parts(bucket, "kill-out/") >= 3):  # some parts committed, a segment in progress
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The kill landed mid-job: some records committed, not all, the manifest not complete,
    # and the killed job's lease left behind.
    committed = part_ids(bucket, "kill-out/")
    manifest = json.loads(s3_client().get_object(Bucket=bucket, Key="kill-out/_manifest.json")["Body"].read())
    assert 30 <= len(committed) < 120 and manifest["complete"] is False
    assert s3_client().head_object(Bucket=bucket, Key="kill-out/_lease.json")
    finished = subprocess.run(command, env=batch_env(), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    skipped = int(finished.stderr.split("skipped")[1].split()[0])
    # The rerun (same state directory: it takes its own lease over) skipped the committed
    # records, and those the killed run had only in its local segment, and did the rest.
    assert len(committed) <= skipped < 120, finished.stderr
    manifest, entries = s3_output(bucket, "kill-out/")
    found = [entry["id"] for entry in entries]
    assert len(found) == len(set(found)) == 120 and set(found) == ids
    assert manifest["complete"] and manifest["ok"] == 120
    assert all(entry["ok"] for entry in entries)
    assert "Contents" not in s3_client().list_objects_v2(Bucket=bucket, Prefix="kill-out/_lease.json")


def test_two_jobs_on_one_s3_output_lose_no_record(server, bucket, tmp_path):
    """Two machines (two state directories) start the same job on one output: the second
    stops with a message saying who writes it; the first loses nothing; a rerun of the
    second afterwards finds everything done."""
    ids = put_photos(bucket, "two/", 40, 40)

    def command(machine: str) -> list[str]:
        return pais_batch(
            "classify", f"s3://{bucket}/two/", "--out", f"s3://{bucket}/two-out/", "--url", server,
            "--state-dir", str(tmp_path / machine), "--part-records", "10", "--concurrency", "2",
        )  # fmt: skip

    first = subprocess.Popen(
        command("first-machine"), env=batch_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while s3_parts(bucket, "two-out/") < 1:  # the first job holds the lease and is writing
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    # The first job is paused while the second starts: on a busy machine the second's start
    # took longer than the rest of the first job, which then gave its lease back. Paused,
    # it holds the lease, as a job on another machine that is still writing does.
    first.send_signal(signal.SIGSTOP)
    try:
        second = subprocess.run(
            command("second-machine"), env=batch_env(), capture_output=True, text=True, timeout=120
        )
    finally:
        first.send_signal(signal.SIGCONT)
    # Refused: the first job held the lease, which it gives back only when it is done.
    assert second.returncode == 1 and "another batch job is writing" in second.stderr, second.stderr
    assert not (tmp_path / "second-machine" / "segment-000001.jsonl").exists()  # it wrote nothing
    assert first.wait(timeout=600) == 0, first.stderr.read()
    manifest, entries = s3_output(bucket, "two-out/")
    found = [entry["id"] for entry in entries]
    assert len(found) == len(set(found)) == 80 and set(found) == ids
    assert manifest["complete"] and manifest["ok"] == 80
    runs = {key.rsplit("/", 1)[1].rsplit("-", 1)[0] for key in part_keys(bucket, "two-out/")}
    assert len(runs) == 1  # every part is the first job's
    again = subprocess.run(
        command("second-machine"), env=batch_env(), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and int(again.stderr.split("skipped")[1].split()[0]) == 80, again.stderr


def test_an_s3_lease_expires_and_is_then_taken_over(bucket):
    """A job that died on another machine holds the output only until its lease expires;
    the job it expired for learns so at its next renewal, and writes no more."""
    from pais.batch.lease import Lease, LeaseLost, OutputLeased
    from pais.batch.s3 import S3Location

    where = S3Location(bucket, "leased/_lease.json")
    # S3 stamps objects to the second, so a lease's age is read up to 1 s too old: a TTL of
    # 3 s leaves a busy machine 2 s to try the lease while it is surely held.
    dead = Lease(where, "machine-a", "run-a", ttl_s=3)
    dead.acquire()
    dead._stop.set()  # its heartbeat stops, as in a job killed or paused past the TTL
    with pytest.raises(OutputLeased, match="another batch job is writing"):
        Lease(where, "machine-b", "run-b", ttl_s=3).acquire()
    time.sleep(4.5)  # past the TTL however the second falls
    taker = Lease(where, "machine-b", "run-b", ttl_s=3)
    taker.acquire()
    with pytest.raises(LeaseLost, match="taken over by run run-b"):
        dead.renew()
    taker.release()
    assert "Contents" not in s3_client().list_objects_v2(Bucket=bucket, Prefix="leased/")


def part_keys(bucket: str, prefix: str) -> list[str]:
    return [
        item["Key"]
        for item in s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix + "parts/").get("Contents", [])
    ]


def part_ids(bucket: str, prefix: str) -> set[str]:
    """The ids in the parts under `prefix`: what is committed, whatever the manifest says."""
    return {
        json.loads(line)["id"]
        for key in part_keys(bucket, prefix)
        for line in s3_client().get_object(Bucket=bucket, Key=key)["Body"].iter_lines()
    }


def s3_parts(bucket: str, prefix: str) -> int:
    listing = s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix + "parts/")
    return listing.get("KeyCount", 0)


# -- the route check, memory and progress (a small scripted server stands in) ----------


def echo_translations(seen: Seen) -> Answer:
    if seen.path == "/docs.json":
        return Answer(200, {"paths": {"/translate": {}}})
    texts = json.loads(seen.body)["texts"]
    return Answer(
        200, {"model": "echo", "source": "en", "target": "es", "translations": [t[:8] for t in texts]}
    )


def test_a_missing_endpoint_stops_before_reading_input(tmp_path):
    source = tmp_path / "texts.jsonl"
    source.write_text('{"id": "a", "text": "hello"}\n')
    with ScriptedServer(handler=lambda seen: Answer(200, {"paths": {"/classify": {}}})).running() as fake:
        with pytest.raises(JobAborted, match="no /translate endpoint"):
            run_batch(
                "translate", str(source), str(tmp_path / "out.jsonl"), url=fake.url, options={"target": "es"}
            )
        assert [seen.path for seen in fake.seen] == ["/docs.json"]


def jsonl_texts(path: Path, count: int, size: int) -> None:
    with open(path, "w") as handle:
        for index in range(count):
            handle.write(json.dumps({"id": f"text-{index:06d}", "text": f"{index:06d} " + "x" * size}) + "\n")


def peak_memory_of_job(tmp_path: Path, url: str, count: int) -> int:
    source, out = tmp_path / f"in-{count}.jsonl", tmp_path / f"out-{count}.jsonl"
    jsonl_texts(source, count, 4000)
    tracemalloc.start()
    try:
        summary = run_batch(
            "translate", str(source), str(out), url=url, options={"target": "es"}, progress=False
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.done == count and count_lines(out) == count
    return peak


def test_memory_stays_flat_as_the_input_grows(tmp_path):
    """4 KB of text per record: holding the input would cost 32 MB more for the larger job.
    What grows is the set of ids (about 140 bytes per record measured)."""
    with ScriptedServer(handler=echo_translations, record=False).running() as fake:
        peak_memory_of_job(tmp_path, fake.url, 100)  # imports and first-use allocations
        small = peak_memory_of_job(tmp_path, fake.url, 2_000)
        large = peak_memory_of_job(tmp_path, fake.url, 10_000)
    growth_per_record = (large - small) / 8_000
    assert growth_per_record < 500, f"peak {small / 1e6:.1f} MB -> {large / 1e6:.1f} MB"


def test_progress_line_has_rate_and_eta(tmp_path):
    source = tmp_path / "texts.jsonl"
    jsonl_texts(source, 500, 10)
    stream = io.StringIO()
    with ScriptedServer(handler=echo_translations).running() as fake:
        summary = run_batch(
            "translate",
            str(source),
            str(tmp_path / "out.jsonl"),
            url=fake.url,
            options={"target": "es"},
            progress=stream,
        )
    assert summary.total == 500 and summary.requests == 500 // 32 + 1
    last = stream.getvalue().strip().splitlines()[-1]
    assert "500/500" in last and "done 500" in last and "/s" in last and "ETA" in last
    assert "500" in summary.render() and summary.throughput > 0


def test_server_down_stops_the_job_and_a_rerun_does_the_rest(tmp_path):
    source, out = tmp_path / "texts.jsonl", tmp_path / "out.jsonl"
    jsonl_texts(source, 2000, 10)

    def down(seen: Seen) -> Answer:
        if seen.path == "/docs.json":
            return Answer(200, {"paths": {"/translate": {}}})
        return Answer(503, {"error": "down for maintenance"})

    quick = RetryPolicy(max_retries=1, backoff_s=0.01)
    with ScriptedServer(handler=down).running() as fake:
        summary = run_batch(
            "translate", str(source), str(out), url=fake.url, options={"target": "es"}, retry=quick
        )
    assert summary.aborted and "in a row" in summary.aborted
    written = lines(out)
    assert 0 < len(written) < 2000 and all(entry["error"]["retryable"] for entry in written)
    with ScriptedServer(handler=echo_translations).running() as fake:
        again = run_batch("translate", str(source), str(out), url=fake.url, options={"target": "es"})
    assert again.done == 2000 and again.skipped == 0  # the failed ones were tried again
    final = lines(out)
    assert (
        len(final) == 2000 and len({entry["id"] for entry in final}) == 2000 and all(e["ok"] for e in final)
    )


# -- the other tasks (each test fails, naming its route, if the server does not document it)


@pytest.fixture(scope="module")
def routes(server) -> set[str]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    return set(httpx.get(f"{server}/docs.json", headers=headers, timeout=30).json()["paths"])


def needs(routes: set[str], path: str) -> None:
    """Every task's route is served now: one missing from the server's GET /docs.json is a
    failure (a task dropped from the server or its OpenAPI document), never a skip."""
    if path not in routes:
        pytest.fail(
            f"the server does not document {path} in its GET /docs.json; it documents {sorted(routes)}"
        )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_synthesize_writes_audio_files_beside_the_output(server, routes, tmp_path):
    needs(routes, "/synthesize")
    source = write_jsonl(
        tmp_path / "lines.jsonl",
        [
            {"id": "hello", "text": "Hello there. This is a batch job."},
            {"id": "fast", "text": "The same words, read faster.", "speed": 1.5},
            {"id": "empty", "text": ""},
        ],
    )
    out = tmp_path / "speech.jsonl"
    summary = run_batch("synthesize", str(source), str(out), url=server, api_key=API_KEY, progress=False)
    assert (summary.done, summary.failed) == (2, 1)
    by_id = {entry["id"]: entry for entry in lines(out)}
    assert 400 <= by_id["empty"]["error"]["status"] < 500
    for name in ("hello", "fast"):
        result = by_id[name]["result"]
        audio = (tmp_path / result["file"]).read_bytes()
        assert audio[:4] == b"RIFF" and len(audio) == result["bytes"] and result["sample_rate"] > 0
        assert result["file"].startswith("speech.files/") and 0.5 < result["duration_s"] < 10


def test_detect_annotated_images_to_s3(server, routes, bucket, tmp_path):
    needs(routes, "/detect/annotated")
    folder = tmp_path / "in"
    folder.mkdir()
    image, _ = side_by_side(["chelsea", "coffee"])
    (folder / "a.jpg").write_bytes(image)
    (folder / "b.jpg").write_bytes(image)
    summary = run_batch(
        "detect_annotated",
        str(folder),
        f"s3://{bucket}/annotated/",
        url=server,
        api_key=API_KEY,
        options={"format": "png"},
        progress=False,
        state_dir=str(tmp_path / "state"),
    )
    assert summary.done == 2
    _, entries = s3_output(bucket, "annotated/")
    for entry in entries:
        uri = entry["result"]["file"]
        assert (
            uri.startswith(f"s3://{bucket}/annotated/files/")
            and entry["result"]["content_type"] == "image/png"
        )
        data = s3_client().get_object(Bucket=bucket, Key=uri.split("/", 3)[3])["Body"].read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) == entry["result"]["bytes"]


def test_translate_groups_records_by_language_pair(server, routes, tmp_path):
    needs(routes, "/translate")
    sentence = "The weather is nice and I would like to buy a new car."
    records = [{"id": f"es-{i}", "text": sentence, "source": "en"} for i in range(5)]
    records += [{"id": "ca", "text": sentence, "source": "en", "target": "ca"}]
    out = tmp_path / "out.jsonl"
    summary = run_batch(
        "translate",
        str(write_jsonl(tmp_path / "texts.jsonl", records)),
        str(out),
        url=server,
        api_key=API_KEY,
        options={"target": "es"},
        progress=False,
    )
    assert (summary.done, summary.requests) == (6, 2)  # one request per language pair
    by_id = {entry["id"]: entry["result"] for entry in lines(out)}
    assert all("coche nuevo" in by_id[f"es-{i}"]["translation"].lower() for i in range(5))
    assert by_id["ca"]["target"] == "ca" and by_id["ca"]["translation"] != by_id["es-0"]["translation"]


def test_recommend_and_similar_items_from_jsonl(server, routes, tmp_path):
    needs(routes, "/recommend")
    records = [{"id": f"user-{user}", "user_id": str(user), "k": 3} for user in (1, 2, 3)]
    records += [{"id": "query", "query": "animated film for children", "k": 5}, {"id": "neither", "k": 3}]
    out = tmp_path / "recs.jsonl"
    summary = run_batch(
        "recommend",
        str(write_jsonl(tmp_path / "users.jsonl", records)),
        str(out),
        url=server,
        api_key=API_KEY,
    )
    assert (summary.done, summary.failed) == (4, 1)
    by_id = {entry["id"]: entry for entry in lines(out)}
    assert all(len(by_id[f"user-{user}"]["result"]["items"]) == 3 for user in (1, 2, 3))
    assert "exactly one" in by_id["neither"]["error"]["error"]
    seed = by_id["query"]["result"]["items"][0]["item_id"]
    similar = run_batch(
        "similar_items",
        str(write_jsonl(tmp_path / "items.jsonl", [{"id": "seed", "item_id": seed, "k": 4}])),
        str(tmp_path / "similar.jsonl"),
        url=server,
        api_key=API_KEY,
    )
    assert similar.done == 1 and len(lines(tmp_path / "similar.jsonl")[0]["result"]["items"]) == 4


def test_analyze_videos_in_a_folder(server, routes, tmp_path):
    needs(routes, "/analyze_video")
    folder = tmp_path / "videos"
    folder.mkdir()
    write_cat_video(folder / "clip.mp4")
    (folder / "notes.txt").write_text("not a video: not taken")
    out = tmp_path / "out.jsonl"
    summary = run_batch(
        "analyze_video", str(folder), str(out), url=server, api_key=API_KEY, options={"sample_fps": 2}
    )
    assert (summary.done, summary.total) == (1, 1)
    (entry,) = lines(out)
    assert entry["id"] == "clip.mp4" and "cat" in entry["result"]["summary"]
