"""PAIS_* settings: parsing, refusal of bad values, and the README's table kept in step."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from service.settings import Settings, env_name, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_are_safe():
    settings = Settings.from_env({})
    assert settings.classification_model == "packaged:efficientnet-lite0"
    assert settings.max_request_bytes == 64 * 1024 * 1024
    assert settings.max_image_pixels == 50_000_000
    assert settings.api_key_set == frozenset()


def test_environment_overrides_and_keys():
    settings = Settings.from_env(
        {"PAIS_MAX_IMAGE_PIXELS": "1_000_000", "PAIS_API_KEYS": "a, b,,", "PAIS_DEVICE": " cuda "}
    )
    assert settings.max_image_pixels == 1_000_000
    assert settings.api_key_set == {"a", "b"}
    assert settings.device == "cuda"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAIS_MAX_REQUEST_BYTES": "lots"}, "PAIS_MAX_REQUEST_BYTES='lots' is not an integer"),
        ({"PAIS_MAX_BATCH_SIZE": "1"}, "PAIS_MAX_BATCH_SIZE=1 is below its minimum 2"),
    ],
)
def test_bad_values_fail_loudly(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_readme_documents_every_setting():
    readme = README.read_text()
    missing = [env_name(f.name) for f in fields(Settings) if env_name(f.name) not in readme]
    assert not missing, f"README lacks {missing}; paste `python -m service.settings` output"
    assert markdown_table() in readme, "README's settings table is stale; paste `python -m service.settings`"


def test_an_api_key_list_without_keys_is_refused():
    with pytest.raises(ValueError, match="holds no key"):
        Settings.from_env({"PAIS_API_KEYS": " , "})


def test_model_workers_spread_over_gpus():
    from service.model_service import worker_device

    assert worker_device("cpu", worker_index=3, gpu_count=4) == "cpu"
    assert worker_device("auto", worker_index=1, gpu_count=1) == "auto"
    assert [worker_device("cuda", worker_index=i, gpu_count=2) for i in (1, 2, 3)] == [
        "cuda:0",
        "cuda:1",
        "cuda:0",
    ]
    assert worker_device("cuda:1", worker_index=1, gpu_count=4) == "cuda:1"  # an explicit choice stands


def test_translation_settings_and_booleans():
    defaults = Settings.from_env({})
    assert defaults.translation_model == "apertium:*" and defaults.translation_allow_pivot is False
    assert defaults.max_text_chars == 10_000 and defaults.max_texts_per_request == 128
    settings = Settings.from_env(
        {"PAIS_TRANSLATION_ALLOW_PIVOT": "Yes", "PAIS_TRANSLATION_UNKNOWN_MARKS": "1"}
    )
    assert settings.translation_allow_pivot is True and settings.translation_unknown_marks is True
    assert Settings.from_env({"PAIS_TRANSLATION_ALLOW_PIVOT": "off"}).translation_allow_pivot is False
    with pytest.raises(ValueError, match="PAIS_TRANSLATION_ALLOW_PIVOT='maybe' is not a boolean"):
        Settings.from_env({"PAIS_TRANSLATION_ALLOW_PIVOT": "maybe"})
