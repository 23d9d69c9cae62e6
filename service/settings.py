"""Every PAIS setting, in one place: environment variables with the PAIS_ prefix.

`python -m service.settings` prints the table that README.md carries (a test keeps the
two in step). Values are checked at start-up, so a typo fails loudly instead of serving
with a silent default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from models.catalog import default_source

PREFIX = "PAIS_"
# What PAIS_TASKS may name: the catalog's tasks, plus video (served from detection and
# classification models, so it has no model of its own).
SERVABLE_TASKS = ("classification", "detection", "video", "translation", "speech", "recommendation")
MIB = 1024 * 1024


def _setting(default: Any, help: str, minimum: int | None = None) -> Any:
    return field(default=default, metadata={"help": help, "minimum": minimum})


@dataclass(frozen=True)
class Settings:
    # models
    classification_model: str = _setting(
        default_source("classification"),
        "Source URI of the classification model (packaged:, torchvision:, hf:, s3://, a directory).",
    )
    detection_model: str = _setting(
        default_source("detection"),
        "Source URI of the object detection model (packaged:, torchvision:, hf:, s3://, a directory).",
    )
    device: str = _setting("auto", "Device for the models: auto (CUDA when present), cpu, cuda or cuda:N.")
    dtype: str = _setting("auto", "Compute dtype: auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.")
    # read by models.sources.cache_root(), which must not import the service layer
    cache_dir: str = _setting("", "Where s3:// model sources are downloaded to (unset: ~/.cache/pais).")
    model_dir: str = _setting(
        "", "Directory of model artifacts, one sub-directory per task (the container sets /opt/ml/model)."
    )
    tasks: str = _setting(
        "all",
        "Tasks this server serves, comma-separated: classification, detection, video, translation, "
        "speech, recommendation (video also starts detection and classification), or all. Fewer "
        "tasks start faster and use less memory (a server with all of them holds ~4 GB).",
    )
    sagemaker_default_task: str = _setting(
        "",
        "Task of a SageMaker /invocations call whose custom attributes name none "
        "(unset: classify, or the first task served).",
    )
    # request limits
    max_request_bytes: int = _setting(64 * MIB, "Largest request body accepted, in bytes (413 beyond).", 1)
    max_image_pixels: int = _setting(
        50_000_000,
        "Largest image accepted, in pixels (width x height), checked before decoding "
        "(PIL caps it at ~179 MP).",
        1,
    )
    max_images_per_request: int = _setting(64, "Most images in one /classify or /detect request.", 1)
    max_video_bytes: int = _setting(
        256 * MIB,
        "Largest video accepted by /analyze_video, in bytes (its request body may be this large).",
        1,
    )
    max_video_duration_s: int = _setting(600, "Longest video accepted by /analyze_video, in seconds.", 1)
    max_video_frames: int = _setting(
        600, "Most frames one /analyze_video request may analyse (duration x sample_fps).", 1
    )
    # serving
    api_keys: str = _setting(
        "",
        "Comma-separated API keys; when set, every request but health checks (/livez, /readyz, "
        "/healthz, /ping) needs "
        "`Authorization: Bearer <key>` or `X-API-Key`.",
    )
    gateway_workers: int = _setting(1, "Worker processes of the HTTP entry service (parsing, validation).", 1)
    classification_workers: int = _setting(
        1, "Worker processes of the classification model service (each holds a model copy).", 1
    )
    detection_workers: int = _setting(
        1, "Worker processes of the detection model service (each holds a model copy).", 1
    )
    video_workers: int = _setting(
        1, "Worker processes of the video service (decodes videos, sends frames to the model services).", 1
    )
    max_batch_size: int = _setting(64, "Largest batch adaptive batching forms for an image model.", 2)
    batch_max_latency_ms: int = _setting(
        30_000, "Adaptive batching's latency budget; work that cannot start within it is refused with 503.", 1
    )
    request_timeout_s: int = _setting(
        120, "Longest a request may run before it is answered with a timeout.", 1
    )
    max_concurrency: int = _setting(256, "Requests in flight per service before new ones get 429.", 1)
    # translation
    translation_model: str = _setting(
        default_source("translation"),
        "Translation engines, comma-separated, first listed served first: apertium:* (every installed "
        "pair), apertium:<eng-spa or en-es>, hf:<id> or a directory (Marian, M2M-100, NLLB); prefix "
        "<src>-<tgt>= to name a model's pair.",
    )
    translation_allow_pivot: bool = _setting(
        False, "Serve pairs without a direct engine through English (two hops; answers name the route)."
    )
    max_texts_per_request: int = _setting(128, "Most texts in one /translate request.", 1)
    max_text_chars: int = _setting(10_000, "Longest text /translate accepts, in characters.", 1)
    max_translate_chars: int = _setting(
        200_000,
        "Most characters in one /translate request, all texts together (apertium translates "
        "~40,000 a second per pair here: the default keeps a request well inside the timeout).",
        1,
    )
    translation_workers: int = _setting(
        1, "Worker processes of the translation model service (each holds its engines).", 1
    )
    translation_max_batch_size: int = _setting(
        32, "Most /translate requests adaptive batching puts in one batch of the translation service.", 1
    )
    translation_pipelines_per_pair: int = _setting(
        2, "Apertium pipelines per language pair and worker (started on demand, ~13 processes each).", 1
    )
    translation_engine_timeout_s: int = _setting(
        30, "An apertium pipeline that answers nothing for this long while busy is killed and replaced.", 1
    )
    translation_unknown_marks: bool = _setting(
        False, "Keep apertium's marks on words it could not translate (*word, #word, @word)."
    )
    translation_generation_batch: int = _setting(
        64, "Sentences per generate() call of a neural translation model.", 1
    )
    # speech synthesis
    speech_model: str = _setting(
        default_source("speech"),
        "Source URI of the speech synthesis voice (packaged:, hf:, s3://, a directory).",
    )
    speech_workers: int = _setting(
        1, "Worker processes of the speech model service (each holds a voice copy).", 1
    )
    max_speech_chars: int = _setting(
        5000, "Most characters of text in one /synthesize or /synthesize/stream request (413 beyond).", 1
    )
    speech_max_batch_size: int = _setting(
        32, "Largest batch of sentences adaptive batching forms for the speech voice.", 1
    )
    # recommendation
    recommendation_model: str = _setting(
        default_source("recommendation"),
        "Source URI of the recommendation model: packaged:movielens-100k (trained by `make models`), "
        "a snapshot directory or s3:// archive, or bentoml:<name> for a model trained with "
        "`python -m models.recommendation train`.",
    )
    recommendation_workers: int = _setting(
        1, "Worker processes of the recommendation model service (each holds a model copy).", 1
    )
    recommendation_batch_size: int = _setting(
        64, "Largest batch adaptive batching forms for recommendations (one matrix product per batch).", 2
    )
    max_recommendations: int = _setting(
        100, "Largest k one /recommend or /similar_items request may ask for.", 1
    )
    max_liked_items: int = _setting(500, "Most liked_items one /recommend request may send.", 1)
    max_query_chars: int = _setting(1000, "Longest /recommend query, in characters.", 1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f, raw)
        return cls(**values)

    def __post_init__(self) -> None:
        if self.api_keys.strip() and not self.api_key_set:
            raise ValueError(f"{env_name('api_keys')} is set but holds no key; unset it or list keys")
        self.served_tasks  # noqa: B018  (validates PAIS_TASKS at start-up)

    @property
    def served_tasks(self) -> tuple[str, ...]:
        """PAIS_TASKS as a tuple of task names, in the catalog's order."""
        names = {name.strip() for name in self.tasks.split(",") if name.strip()}
        if names == {"all"}:
            return SERVABLE_TASKS
        unknown = names - set(SERVABLE_TASKS)
        if unknown or not names:
            raise ValueError(
                f"{env_name('tasks')}={self.tasks!r}: unknown task(s) {sorted(unknown)}; "
                f"accepted: {', '.join(SERVABLE_TASKS)} or all"
            )
        return tuple(task for task in SERVABLE_TASKS if task in names)

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _parse(f: Any, raw: str) -> Any:
    if f.type in ("bool", bool):
        value = raw.strip().lower()
        if value not in _BOOLEANS:
            raise ValueError(
                f"{env_name(f.name)}={raw!r} is not a boolean; use one of {', '.join(_BOOLEANS)}"
            )
        return _BOOLEANS[value]
    if f.type in ("int", int):
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ValueError(f"{env_name(f.name)}={raw!r} is not an integer") from None
        minimum = f.metadata.get("minimum")
        if minimum is not None and value < minimum:
            raise ValueError(f"{env_name(f.name)}={value} is below its minimum {minimum}")
        return value
    return raw.strip()


_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in fields(Settings):
        default = f.default if f.default != "" else "(unset)"
        lines.append(f"| `{env_name(f.name)}` | `{default}` | {f.metadata['help']} |")
    return "\n".join(lines)


_current: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


if __name__ == "__main__":
    print(markdown_table())
