"""ImageClassifier: the classification runtime, usable from a notebook or a service.

>>> clf = ImageClassifier.load("default")
>>> clf.predict([Path("cat.jpg")], top_k=3)[0].predictions[0].label
'tabby'
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch

from ..device import Placement
from ..errors import ErrorKind
from ..image_runtime import ImageRuntime
from ..imaging import DEFAULT_MAX_PIXELS, ImageError, ImageInput, to_rgb_tensor
from ..info import ModelInfo
from . import DEFAULT_SOURCE, MAX_TOP_K, loaders
from .heads import final_linear
from .preprocess import BatchPreparer
from .schema import Classification, ClassifyItem, Embedding, EmbedItem, Prediction


class ImageClassifier(ImageRuntime):
    loaders = loaders
    default_source = DEFAULT_SOURCE

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
        # The final layer's input is the image embedding: a hook hands it to embed_many
        # (per thread, so concurrent callers never see each other's batches). A network
        # without a final linear layer (SqueezeNet's is a convolution) has no embeddings.
        self._embedding = threading.local()
        try:
            head: torch.nn.Linear | None = final_linear(self.network)[2]
        except ValueError:
            head = None
        if head is not None:
            head.register_forward_pre_hook(self._capture_embedding)
        self._warm_up()
        self.info: ModelInfo = loaded.info.with_details(
            classes=len(loaded.labels),
            placement=placement.describe(),
            input_size=list(self.preprocess.output_size),
            embedding_size=head.in_features if head is not None else None,
        )

    def predict(self, images: Sequence[ImageInput], top_k: int = 5) -> list[Classification]:
        """Classify images (bytes, paths, PIL images, HxWx3 arrays or 3xHxW uint8 tensors).
        Raises ImageError for the first input that is not a usable image."""
        results = self.classify_many([to_rgb_tensor(image, self.max_pixels) for image in images], top_k)
        for result in results:
            if isinstance(result, ImageError):
                raise result
        return results  # type: ignore[return-value]

    def predict_batch(
        self, items: Sequence[ClassifyItem | EmbedItem]
    ) -> list[Classification | Embedding | ImageError]:
        """The runtime interface: a Classification per ClassifyItem, an Embedding per
        EmbedItem, or an ImageError, in order."""
        results: list[Classification | Embedding | ImageError | None] = [None] * len(items)
        classify = [i for i, item in enumerate(items) if isinstance(item, ClassifyItem)]
        answers = self.classify_many([items[i].image for i in classify], [items[i].top_k for i in classify])  # type: ignore[union-attr]
        for i, answer in zip(classify, answers, strict=True):
            results[i] = answer
        embed = [i for i, item in enumerate(items) if isinstance(item, EmbedItem)]
        if embed and self.info.details["embedding_size"] is None:
            for i in embed:
                results[i] = ImageError(
                    ErrorKind.UNPROCESSABLE, f"{self.name} has no final linear layer: no embeddings"
                )
        elif embed:
            for i, vector in zip(embed, self.embed_many([items[i].image for i in embed]), strict=True):
                results[i] = (
                    vector if isinstance(vector, ImageError) else Embedding(self.name, vector.tolist())
                )
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

    def embed_many(self, images: Sequence[bytes | torch.Tensor]) -> list[np.ndarray | ImageError]:
        """Image embeddings (search, clustering, a POST /embed route): the backbone's pooled
        features that the final layer reads, as float32 vectors of `info.details
        ["embedding_size"]`; an ImageError in each bad image's slot."""
        if self.info.details["embedding_size"] is None:
            raise ValueError(f"{self.name} has no final linear layer, so no embeddings")
        results: list[np.ndarray | ImageError] = []
        for chunk_slice in self._chunks(images):  # bounded in images and in decoded pixels
            slots = self._decode_chunk(images[chunk_slice])
            good = [i for i, slot in enumerate(slots) if isinstance(slot, torch.Tensor)]
            chunk: list[np.ndarray | ImageError] = list(slots)  # type: ignore[arg-type]
            if good:
                vectors = self.embeddings([slots[i] for i in good]).numpy()  # type: ignore[misc]
                for row, i in enumerate(good):
                    chunk[i] = vectors[row]
            results.extend(chunk)
        return results

    @torch.inference_mode()
    def embeddings(self, images: list[torch.Tensor]) -> torch.Tensor:
        """Decoded (3, H, W) uint8 images -> (N, embedding_size) float32 on the CPU."""
        self._embedding.sink = sink = []
        try:
            self.network(self._prepare(images))
        finally:
            self._embedding.sink = None
        return sink[0].float().cpu()

    def _capture_embedding(self, module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        sink = getattr(self._embedding, "sink", None)
        if sink is not None:
            sink.append(args[0].flatten(1))

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
