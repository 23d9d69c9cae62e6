"""Loading steps every task runtime shares: dispatch a source URI to the task's loaders,
version packaged weights, resolve torchvision weight enums, describe Hugging Face models,
and write or check PAIS snapshots.

Task loaders (models/<task>/loaders.py) decide what a network is; these helpers decide
where its weights come from and what its model card says, the same way for every task.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn

from .hf import hf_directory, hf_licence, hf_version
from .info import ModelInfo
from .sources import (
    Source,
    SourceError,
    file_digest,
    package_version,
    read_snapshot_manifest,
    write_snapshot_manifest,
)

T = TypeVar("T")

WEIGHTS_FILE = "weights.safetensors"


def dispatch_source(
    source: Source,
    task: str,
    *,
    packaged: Callable[[Source], T],
    torchvision: Callable[[Source], T],
    snapshot: Callable[[Path, dict, Source], T],
    directory: Callable[[Path, Source], T],
) -> T:
    """Call the loader that fits `source`: packaged:, torchvision:, or, for hf:, s3:// and
    local sources (which all resolve to a directory), a PAIS snapshot or the task's own
    directory formats."""
    if source.scheme == "packaged":
        return packaged(source)
    if source.scheme == "torchvision":
        return torchvision(source)
    path = hf_directory(source)
    manifest = read_snapshot_manifest(path)
    if manifest is not None:
        if manifest.get("task") != task:
            raise SourceError(f"{source.uri}: snapshot is for task {manifest.get('task')!r}, not {task!r}")
        return snapshot(path, manifest, source)
    return directory(path, source)


def packaged_weights_version(distribution: str, *weights: Path) -> str:
    """`<dist>==<version>+sha256.<digest>`: changes exactly when the shipped bytes do (the
    digest of one file, or a digest of several files' digests)."""
    digests = [file_digest(path) for path in weights]
    digest = digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()[:12]
    return f"{distribution}=={package_version(distribution)}+sha256.{digest}"


def snapshot_info(manifest: dict, source: Source) -> ModelInfo:
    """The model card stored in a snapshot, noting where this copy was loaded from."""
    return ModelInfo.from_dict(manifest["info"]).with_details(loaded_from=source.uri)


def save_snapshot(directory: Path, task: str, arch: str, info: ModelInfo, **fields: Any) -> None:
    """Write the manifest that `dispatch_source` recognises; `fields` are task-specific."""
    write_snapshot_manifest(
        directory, {"format": 1, "task": task, "arch": arch, "info": info.to_dict(), **fields}
    )


def save_weights(network: nn.Module, path: Path) -> None:
    """A state_dict as safetensors, in fp32 whatever the runtime computes in."""
    state = {
        k: (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in network.state_dict().items()
    }
    save_file(state, path)


# --- torchvision ---------------------------------------------------------------------------


def torchvision_weights(source: Source, module: ModuleType, kind: str) -> Any:
    """The weights enum member a `torchvision:<arch>[:<WEIGHTS>]` source names, checked
    against the models of `module` (torchvision.models, torchvision.models.detection, ...)."""
    from torchvision.models import get_model_weights, list_models

    if source.name not in list_models(module=module):
        raise SourceError(
            f"torchvision has no {kind} model {source.name!r}; "
            f"see torchvision.models.list_models(module={module.__name__})"
        )
    weights_enum = get_model_weights(source.name)
    try:
        return weights_enum[source.variant] if source.variant else weights_enum.DEFAULT
    except KeyError:
        available = ", ".join(w.name for w in weights_enum)
        raise SourceError(f"{source.uri}: no weights {source.variant!r}; available: {available}") from None


def build_torchvision(source: Source, weights: Any, **options: Any) -> nn.Module:
    """The network with its weights from the torch hub cache (or downloaded)."""
    from torchvision.models import get_model

    try:
        return get_model(source.name, weights=weights, **options)
    except OSError as exc:  # URLError is an OSError: not in the torch hub cache and offline
        raise SourceError(
            f"{source.uri}: weights are not in the torch hub cache ({torch.hub.get_dir()}/checkpoints) "
            f"and could not be downloaded from {weights.url}: {exc}"
        ) from exc


def torchvision_info(task: str, source: Source, weights: Any, licence: str) -> ModelInfo:
    import torchvision

    return ModelInfo(
        task=task,
        name=source.name,
        source=source.uri,
        version=f"torchvision=={torchvision.__version__.split('+')[0]}:{weights.name}",
        licence=licence,
        origin=f"torchvision weights {type(weights).__name__}.{weights.name} ({weights.url})",
    )


# --- Hugging Face --------------------------------------------------------------------------


def hf_info(task: str, source: Source, directory: Path, model: nn.Module) -> ModelInfo:
    """The model card of a transformers model loaded from `directory`."""
    return ModelInfo(
        task=task,
        name=source.name.rstrip("/").split("/")[-1] if source.scheme != "hf" else source.name,
        source=source.uri,
        version=hf_version(directory),
        licence=hf_licence(directory),
        origin=f"transformers {type(model).__name__} from {source.uri}",
    )
