"""Face detection with MTCNN (P-Net, R-Net, O-Net cascade) as a detector backend: the
weights and the cascade code ship in the `facenet-pytorch` package (installed --no-deps).

The cascade takes a batch of same-sized images (it builds one image pyramid for the
batch), so images are grouped by size, as the transformers backend does; video frames
and same-sized uploads share one call. Its one class is "face", scored by O-Net.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from ..device import Placement
from ..loading import WEIGHTS_FILE, save_weights
from .backend import Candidates, DetectorBackend, Query

LABELS = ["face"]


def build_mtcnn() -> torch.nn.Module:
    """The cascade with the package's weights (P-, R- and O-Net load their own files)."""
    from facenet_pytorch import MTCNN

    # keep_all: every face, not only the largest; min_face_size as the package's default
    return MTCNN(keep_all=True, device="cpu")


class MTCNNBackend(DetectorBackend):
    arch = "mtcnn"
    autocast = True  # the cascade's NMS runs on its boxes' dtype: fp32 weights, autocast convs

    def __init__(self, mtcnn: torch.nn.Module):
        super().__init__()
        self.mtcnn = mtcnn
        self.labels = list(LABELS)

    @classmethod
    def from_snapshot(cls, directory: Path) -> MTCNNBackend:
        backend = cls(build_mtcnn())
        backend.mtcnn.load_state_dict(load_file(directory / WEIGHTS_FILE))
        return backend

    def placed(self, placement: Placement) -> DetectorBackend:
        self.mtcnn.device = placement.device  # where the cascade puts its pyramids
        return super().placed(placement)

    def describe(self) -> dict[str, Any]:
        return {"min_face_size": self.mtcnn.min_face_size}

    def save(self, directory: Path) -> dict[str, Any]:
        save_weights(self.mtcnn, directory / WEIGHTS_FILE)
        return {}

    def detect(
        self, images: Sequence[torch.Tensor], queries: Sequence[Query], placement: Placement
    ) -> list[Candidates]:
        groups: defaultdict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            groups[tuple(image.shape)].append(i)
        results: list[Candidates | None] = [None] * len(images)
        for members in groups.values():
            # the cascade wants (N, H, W, 3) pixels in 0..255
            batch = torch.stack([images[i] for i in members]).to(placement.device).permute(0, 2, 3, 1).float()
            # per image: a (K, 4) array and (K,) scores as numpy object arrays, or None
            with self.precision(placement):
                boxes, probs = self.mtcnn.detect(batch)
            for i, found, scores in zip(members, boxes, probs, strict=True):
                if found is None:
                    found, scores = np.zeros((0, 4)), np.zeros((0,))
                found = torch.from_numpy(np.asarray(found, dtype=np.float32).reshape(-1, 4))
                scores = torch.from_numpy(np.asarray(scores, dtype=np.float32).reshape(-1))
                results[i] = Candidates(found, scores, torch.zeros(len(scores), dtype=torch.int64))
        return results  # type: ignore[return-value]
