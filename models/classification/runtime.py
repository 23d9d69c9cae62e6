"""ImageClassifier: the classification runtime, usable from a notebook or a service.

>>> clf = ImageClassifier.load("default")
>>> clf.predict([Path("cat.jpg")], top_k=3)[0].predictions[0].label
'tabby'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..device import Placement
from ..image_runtime import ImageRuntime
from ..imaging import DEFAULT_MAX_PIXELS, ImageError, ImageInput, to_rgb_tensor
from ..info import ModelInfo
from . import MAX_TOP_K, loaders
from .preprocess import BatchPreparer


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    index: int


@dataclass(frozen=True)
class Classification:
    model: str
    predictions: list[Prediction]  # sorted by score, highest first


class ImageClassifier(ImageRuntime):
    loaders = loaders

    def __init__(
        self,
        loaded: loaders.LoadedClassifier,
        placement: Placement,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        forward_chunk: int = 64,
    ):
        super().__init__(loaded, placement, max_pixels, forward_chunk)
        self.network = placement.place(loaded.network)
        self.labels = loaded.labels
        self.preprocess = loaded.preprocess
        self._prepare = BatchPreparer(self.preprocess, placement)
        self._warm_up()
        self.info: ModelInfo = loaded.info.with_details(
            classes=len(loaded.labels),
            placement=placement.describe(),
            input_size=list(self.preprocess.output_size),
        )

    def predict(self, images: Sequence[ImageInput], top_k: int = 5) -> list[Classification]:
        """Classify images (bytes, paths, PIL images, HxWx3 arrays or 3xHxW uint8 tensors).
        Raises ImageError for the first input that is not a usable image."""
        results = self.classify_many([to_rgb_tensor(image, self.max_pixels) for image in images], top_k)
        for result in results:
            if isinstance(result, ImageError):
                raise result
        return results  # type: ignore[return-value]

    def classify_many(
        self, images: Sequence[bytes | torch.Tensor], top_k: int | Sequence[int] = 5
    ) -> list[Classification | ImageError]:
        """The service's entry point: encoded bytes or decoded tensors in, one result or
        ImageError per slot out, so one bad image never fails the rest of a batch."""
        top_ks = [top_k] * len(images) if isinstance(top_k, int) else list(top_k)
        if len(top_ks) != len(images):
            raise ValueError("top_k must be an int or one value per image")
        for k in top_ks:
            if not 1 <= k <= MAX_TOP_K:
                raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}, got {k}")
        results: list[Classification | ImageError] = []
        for chunk in self._chunks(images):
            results.extend(self._classify_chunk(self._decode_chunk(images[chunk]), top_ks[chunk]))
        return results

    def _classify_chunk(
        self, slots: list[torch.Tensor | ImageError], top_ks: list[int]
    ) -> list[Classification | ImageError]:
        results: list[Classification | ImageError] = list(slots)  # type: ignore[arg-type]
        good = [i for i, slot in enumerate(slots) if isinstance(slot, torch.Tensor)]
        if not good:
            return results
        probabilities = self._probabilities([slots[i] for i in good])  # type: ignore[misc]
        k_max = min(max(top_ks[i] for i in good), len(self.labels))
        scores, indices = probabilities.topk(k_max, dim=1)
        scores, indices = scores.tolist(), indices.tolist()
        for row, i in enumerate(good):
            k = min(top_ks[i], len(self.labels))
            results[i] = Classification(
                model=self.name,
                predictions=[
                    Prediction(label=self.labels[idx], score=score, index=idx)
                    for score, idx in zip(scores[row][:k], indices[row][:k], strict=True)
                ],
            )
        return results

    def _warm_up(self) -> None:
        """One forward at load: CUDA context and kernels are ready before the first
        request, and a model that cannot run fails at start-up, not on a client's call."""
        height, width = self.preprocess.output_size
        self._probabilities([torch.zeros(3, height, width, dtype=torch.uint8)])

    @torch.inference_mode()
    def _probabilities(self, images: list[torch.Tensor]) -> torch.Tensor:
        batch = self._prepare(images)
        logits = self.network(batch)
        return logits.float().softmax(dim=1).cpu()
