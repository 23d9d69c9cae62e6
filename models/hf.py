"""Hugging Face sources, shared by every task that can run a transformers model.

A hub id is resolved to a local snapshot directory first (the hub cache serves it offline),
so loading, versioning and licence lookup all work on plain files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .sources import Source, SourceError, file_digest, local_directory

# Files a transformers model needs; other frameworks' weights are never fetched.
HUB_FILE_PATTERNS = [
    "*.json",
    "*.safetensors",
    "pytorch_model*.bin",
    "*.txt",
    "*.model",
    "*.spm",
    "README.md",
]


def hf_directory(source: Source) -> Path:
    """Local directory holding the model of an `hf:` or local/s3 source."""
    if source.scheme != "hf":
        return local_directory(source)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(repo_id=source.name, revision=source.variant, allow_patterns=HUB_FILE_PATTERNS)
        )
    except LocalEntryNotFoundError as exc:
        raise SourceError(
            f"{source.uri}: not in the Hugging Face cache and the hub is unreachable "
            "(offline). Download it on a connected machine into HF_HOME, or use a local "
            "directory or s3:// source."
        ) from exc
    except Exception as exc:  # repository not found, revision not found, auth
        raise SourceError(f"{source.uri}: {exc}") from exc


def hf_version(directory: Path) -> str:
    """The hub commit when the directory is a hub snapshot, else a digest of the contents
    of its weight and config files (so retrained weights of the same shapes get a new one)."""
    if directory.parent.name == "snapshots" and len(directory.name) == 40:
        return directory.name[:12]
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix in (".safetensors", ".bin", ".json", ".model", ".spm", ".txt"):
            digest.update(str(path.relative_to(directory)).encode())
            digest.update(file_digest(path, 64).encode())
    return "dir-" + digest.hexdigest()[:12]


def hf_licence(directory: Path) -> str:
    """The `license:` of the model card's front matter, if the card says."""
    card = directory / "README.md"
    if card.is_file():
        lines = card.read_text(errors="replace").splitlines()
        if lines and lines[0].strip() == "---":
            for line in lines[1:]:
                if line.strip() == "---":
                    break
                key, _, value = line.partition(":")
                if key.strip() == "license" and value.strip():
                    return value.strip()
    return "unknown (no licence in the model card; check before use)"
