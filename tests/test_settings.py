"""PAIS_* settings (service/settings.py, service/config.py): global ones and each task's
section, parsing, refusal of bad and renamed names, PAIS_TASKS, GPU spreading, and the
settings table in docs/operations.md kept in step."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from service.model_service import worker_device
from service.settings import RENAMED, Settings

REPO = Path(__file__).resolve().parents[1]
OPERATIONS_DOC = REPO / "docs" / "operations.md"
ALL_TASKS = ("classification", "detection", "recommendation", "speech", "translation", "video")


def test_defaults_are_safe():
    settings = Settings.from_env({})
    assert settings.max_request_bytes == 64 * 1024 * 1024
    assert settings.max_image_pixels == 50_000_000
    assert settings.api_key_set == frozenset()
    assert settings.device == "auto" and settings.dtype == "auto"
    assert settings.served_tasks() == ALL_TASKS
    assert settings.section("classification").model == "packaged:efficientnet-lite0"
    assert settings.section("classification").serve_in == "model-service"
    assert settings.section("classification").max_images == 64
    translation = settings.section("translation")
    assert translation.model == "apertium:*" and translation.serve_in == "entry"
    assert translation.max_texts == 128 and translation.max_text_chars == 10_000
    assert translation.allow_pivot is False
    assert settings.section("recommendation").serve_in == "entry"
    assert settings.section("video").max_bytes == 256 * 1024 * 1024
    # every task has its section, also when not served
    assert set(Settings.from_env({"PAIS_TASKS": "speech"}).sections) == set(ALL_TASKS)


def test_environment_overrides_global_and_section_values():
    settings = Settings.from_env(
        {
            "PAIS_MAX_IMAGE_PIXELS": "1_000_000",
            "PAIS_API_KEYS": "a, b,,",
            "PAIS_DEVICE": " cuda ",
            "PAIS_CLASSIFICATION_MAX_BATCH_SIZE": "16",
            "PAIS_DETECTION_MAX_IMAGES": "3",
            "PAIS_TRANSLATION_MODEL": "apertium:en-es",
            "PAIS_MAX_REQUEST_BYTES": "",  # empty: the default, as if unset
        }
    )
    assert settings.max_image_pixels == 1_000_000
    assert settings.api_key_set == {"a", "b"}
    assert settings.device == "cuda"
    assert settings.section("classification").max_batch_size == 16
    assert settings.section("detection").max_batch_size == 64  # one section does not touch another
    assert settings.section("detection").max_images == 3
    assert settings.section("translation").model == "apertium:en-es"
    assert settings.max_request_bytes == 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAIS_MAX_REQUEST_BYTES": "lots"}, "PAIS_MAX_REQUEST_BYTES='lots' is not an integer"),
        ({"PAIS_MAX_JSON_DEPTH": "1"}, "PAIS_MAX_JSON_DEPTH=1 is below its minimum 2"),
        (
            {"PAIS_CLASSIFICATION_MAX_BATCH_SIZE": "0"},
            "PAIS_CLASSIFICATION_MAX_BATCH_SIZE=0 is below its minimum 1",
        ),
        ({"PAIS_SPEECH_MAX_CHARS": "5k"}, "PAIS_SPEECH_MAX_CHARS='5k' is not an integer"),
        ({"PAIS_API_KEYS": " , "}, "PAIS_API_KEYS is set but holds no key"),
    ],
    ids=["not-an-integer", "below-minimum", "section-below-minimum", "section-not-an-integer", "no-keys"],
)
def test_bad_values_fail_loudly_naming_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_renamed_flat_settings_are_refused_naming_the_new_one(old):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({old: "8"})
    assert f"{old} is now {RENAMED[old]}" in str(refused.value)
    # each replacement named is a setting that exists
    for new in RENAMED[old].split(" and "):
        assert f"`{new}`" in _table(), f"RENAMED points {old} at {new}, which is no setting"


def test_a_renamed_name_left_empty_is_no_error():
    assert Settings.from_env({"PAIS_MAX_BATCH_SIZE": ""}).section("classification").max_batch_size == 64


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"PAIS_MAX_TEXT_CHARS": "9", "PAIS_GATEWAY_WORKERS": "2"})
    assert "PAIS_MAX_TEXT_CHARS is now PAIS_TRANSLATION_MAX_TEXT_CHARS" in str(refused.value)
    assert "PAIS_GATEWAY_WORKERS is now PAIS_ENTRY_WORKERS" in str(refused.value)


def test_an_unknown_field_of_a_section_is_refused_listing_the_sections_settings():
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"PAIS_TRANSLATION_MAX_TEXT_CHAR": "500"})
    message = str(refused.value)
    assert "PAIS_TRANSLATION_MAX_TEXT_CHAR is not a setting of task translation" in message
    assert "PAIS_TRANSLATION_MAX_TEXT_CHARS" in message and "PAIS_TRANSLATION_ALLOW_PIVOT" in message
    assert "PAIS_SPEECH_" not in message  # only that section's settings


def test_choices_are_checked():
    assert Settings.from_env({"PAIS_CLASSIFICATION_SERVE_IN": "entry"}).section(
        "classification"
    ).serve_in == ("entry")
    with pytest.raises(
        ValueError, match="PAIS_TRANSLATION_SERVE_IN='gpu': accepted values are model-service, entry"
    ):
        Settings.from_env({"PAIS_TRANSLATION_SERVE_IN": "gpu"})


def test_booleans():
    settings = Settings.from_env(
        {"PAIS_TRANSLATION_ALLOW_PIVOT": "Yes", "PAIS_TRANSLATION_UNKNOWN_MARKS": "1"}
    )
    assert settings.section("translation").allow_pivot is True
    assert settings.section("translation").unknown_marks is True
    for off in ("off", "0", "false", "NO"):
        assert (
            Settings.from_env({"PAIS_TRANSLATION_ALLOW_PIVOT": off}).section("translation").allow_pivot
            is False
        )
    with pytest.raises(ValueError, match="PAIS_TRANSLATION_ALLOW_PIVOT='maybe' is not a boolean"):
        Settings.from_env({"PAIS_TRANSLATION_ALLOW_PIVOT": "maybe"})


@pytest.mark.parametrize(
    ("tasks", "served"),
    [
        ("all", ALL_TASKS),
        ("translation, speech", ("speech", "translation")),  # the registry's order, not the setting's
        ("video", ("classification", "detection", "video")),  # video builds on both image models
        ("detection,video", ("classification", "detection", "video")),
        ("recommendation", ("recommendation",)),
    ],
)
def test_tasks_setting_with_what_tasks_require(tasks, served):
    assert Settings.from_env({"PAIS_TASKS": tasks}).served_tasks() == served


@pytest.mark.parametrize("tasks", ["classification,paint", " , ", "all,speech"])
def test_unknown_tasks_are_refused_with_the_accepted_list(tasks):
    # refused when the settings are read: `bentoml serve` fails before any worker starts
    with pytest.raises(
        ValueError, match=r"accepted: classification, detection, recommendation, .*video or all"
    ):
        Settings.from_env({"PAIS_TASKS": tasks})


def test_model_workers_spread_over_gpus():
    assert worker_device("cpu", worker_index=3, gpu_count=4) == "cpu"
    assert worker_device("auto", worker_index=1, gpu_count=1) == "auto"
    assert worker_device("auto", worker_index=2, gpu_count=0) == "auto"
    assert [worker_device("cuda", worker_index=i, gpu_count=2) for i in (1, 2, 3)] == [
        "cuda:0",
        "cuda:1",
        "cuda:0",
    ]
    assert [worker_device("auto", worker_index=i, gpu_count=3) for i in (1, 2, 3, 4)] == [
        "cuda:0",
        "cuda:1",
        "cuda:2",
        "cuda:0",
    ]
    assert worker_device("cuda:1", worker_index=1, gpu_count=4) == "cuda:1"  # an explicit choice stands


@functools.cache
def _table() -> str:
    """What `python -m service.settings` prints (run as a user would, so the module's
    entry point itself is checked)."""
    done = subprocess.run(
        [sys.executable, "-m", "service.settings"], cwd=REPO, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_table_documents_every_setting():
    table = _table()
    settings = Settings.from_env({})
    for name in (
        "PAIS_DEVICE",
        "PAIS_TASKS",
        "PAIS_API_KEYS",
        "PAIS_ENTRY_WORKERS",
        "PAIS_MAX_REQUEST_BYTES",
    ):
        assert f"| `{name}` |" in table
    for task, section in settings.sections.items():
        for field in type(section).__dataclass_fields__:
            assert f"| `PAIS_{task.upper()}_{field.upper()}` |" in table, (task, field)
    assert "| `PAIS_TRANSLATION_SERVE_IN` | `entry` |" in table  # a section's own default
    assert "| `PAIS_CACHE_DIR` | (unset) |" in table


def test_docs_operations_carries_the_settings_table_verbatim():
    """docs/operations.md is where operators read the settings; it must be the current
    output of `python -m service.settings`, pasted as it is."""
    assert OPERATIONS_DOC.is_file(), (
        "docs/operations.md is missing: it must carry the settings table (`python -m service.settings`)"
    )
    assert _table() in OPERATIONS_DOC.read_text(), (
        "docs/operations.md's settings table is stale; paste the output of `python -m service.settings`"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PAIS_TASKS": "classification,paint"},
            "PAIS_TASKS='classification,paint': unknown task(s) ['paint']",
        ),
        (
            {"PAIS_TASKS": "translation", "PAIS_SAGEMAKER_DEFAULT_TASK": "classify"},
            "PAIS_SAGEMAKER_DEFAULT_TASK='classify' is not an operation of the tasks served",
        ),
    ],
    ids=["unknown-task", "default-operation-not-served"],
)
def test_preflight_refuses_what_would_fail_the_workers(monkeypatch, env, message):
    """The container entrypoint's check (service.preflight) must catch every setting that
    fails the server later: PAIS_SAGEMAKER_DEFAULT_TASK naming an operation not served
    raises in each entry worker's start-up (SageMakerRoutes), which BentoML answers by
    restarting the worker forever (seen: 12 failed start-ups a minute, never ready)."""
    from service.preflight import problems

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    found = problems()
    assert any(message in problem for problem in found), found
