"""ObjectDetector: the detection runtime, usable from a notebook or a service.

>>> detector = ObjectDetector.load("default")
>>> [d.label for d in detector.detect([Path("street.jpg")])[0].detections]
['person', 'person', 'bicycle']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from ..device import Placement
from ..errors import ErrorKind
from ..image_runtime import ImageRuntime
from ..imaging import DEFAULT_MAX_PIXELS, ImageError, ImageInput, to_rgb_tensor
from ..info import ModelInfo
from . import ANNOTATION_MEDIA_TYPES, DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD, DEFAULT_SOURCE, loaders
from .backend import Query, finish
from .drawing import draw_detections
from .options import DetectOptions, canonical_classes
from .schema import Detection, DetectItem, ImageDetections

# Index entries of torchvision's COCO list that are no class (gaps in COCO's ids).
_PLACEHOLDER_LABELS = {"", "__background__", "N/A"}
DEFAULT_OPTIONS = DetectOptions()


class ObjectDetector(ImageRuntime):
    loaders = loaders
    default_source = DEFAULT_SOURCE

    def __init__(
        self,
        loaded: loaders.LoadedDetector,
        placement: Placement,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        forward_chunk: int = 64,
    ):
        super().__init__(loaded, placement, max_pixels, forward_chunk)
        self.backend = loaded.backend.placed(placement)
        # the classes a query can name: each label once, by its first index
        self._class_ids: dict[str, int] = {}
        for index, label in enumerate(self.backend.labels):
            if label not in _PLACEHOLDER_LABELS:
                self._class_ids.setdefault(label, index)
        # without a class filter, every class but the placeholders
        self._every_class: tuple[int, ...] | None = tuple(self._class_ids.values())
        if len(self._every_class) == len(self.backend.labels):
            self._every_class = None
        self.info: ModelInfo = loaded.info.with_details(
            labels=self.labels, placement=placement.describe(), **self.backend.describe()
        )
        self._warm_up()

    @property
    def labels(self) -> list[str]:
        """The classes this model detects (what `classes` may name)."""
        return list(self._class_ids)

    def detect(
        self,
        images: Sequence[ImageInput],
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        classes: Sequence[str] | None = None,
    ) -> list[ImageDetections]:
        """Detect objects in images (bytes, paths, PIL images, HxWx3 arrays or 3xHxW uint8
        tensors). Raises ImageError for the first input that is not a usable image."""
        options = DetectOptions(score_threshold, max_detections, tuple(classes) if classes else None)
        results = self.detect_many([to_rgb_tensor(image, self.max_pixels) for image in images], options)
        for result in results:
            if isinstance(result, ImageError):
                raise result
        return results  # type: ignore[return-value]

    def predict_batch(self, items: Sequence[DetectItem]) -> list[ImageDetections | ImageError]:
        """The runtime interface: one ImageDetections or ImageError per item, in order; an
        item whose options this model refuses (an unknown class) gets an `invalid` error."""
        results: list[ImageDetections | ImageError | None] = [None] * len(items)
        good = []
        for index, item in enumerate(items):
            try:
                self.check_options(item.options, item.annotate)
            except ValueError as error:
                results[index] = ImageError(ErrorKind.INVALID, str(error))
                continue
            good.append(index)
        found = self.detect_many(
            [items[i].image for i in good],
            [items[i].options for i in good],
            [items[i].annotate for i in good],
        )
        for index, result in zip(good, found, strict=True):
            results[index] = result
        return results  # type: ignore[return-value]

    def detect_many(
        self,
        images: Sequence[bytes | torch.Tensor],
        options: DetectOptions | Sequence[DetectOptions] = DEFAULT_OPTIONS,
        annotate: str | Sequence[str | None] | None = None,
    ) -> list[ImageDetections | ImageError]:
        """The service's entry point: encoded bytes or decoded tensors in, one result or
        ImageError per slot out, so one bad image never fails the rest of a batch.
        `options` and `annotate` (None, "jpeg" or "png": also return the image with the
        boxes drawn) are one for all images or one per image. ValueError for bad options."""
        per_image = [options] * len(images) if isinstance(options, DetectOptions) else list(options)
        formats = (
            [annotate] * len(images) if annotate is None or isinstance(annotate, str) else list(annotate)
        )
        if len(per_image) != len(images) or len(formats) != len(images):
            raise ValueError("options and annotate must be one value or one per image")
        queries = [self._query(o, fmt) for o, fmt in zip(per_image, formats, strict=True)]
        results: list[ImageDetections | ImageError] = []
        for chunk in self._chunks(images):
            slots = self._decode_chunk(images[chunk])
            results.extend(self._detect_chunk(slots, queries[chunk], formats[chunk]))
        return results

    def _detect_chunk(
        self, slots: list[torch.Tensor | ImageError], queries: list[Query], formats: list[str | None]
    ) -> list[ImageDetections | ImageError]:
        results: list[ImageDetections | ImageError] = list(slots)  # type: ignore[arg-type]
        good = [i for i, slot in enumerate(slots) if isinstance(slot, torch.Tensor)]
        if not good:
            return results
        with torch.inference_mode():
            found = self.backend.detect([slots[i] for i in good], [queries[i] for i in good], self.placement)  # type: ignore[misc]
        for i, candidates in zip(good, found, strict=True):
            image: torch.Tensor = slots[i]  # type: ignore[assignment]
            height, width = image.shape[-2:]
            query = queries[i]
            if query.class_ids is None and self._every_class is not None:
                query = replace(query, class_ids=self._every_class)  # never a placeholder label
            kept = finish(candidates, query, height, width)
            detections = [
                Detection(self.backend.labels[label], score, tuple(round(v, 1) for v in box))
                for box, score, label in zip(
                    kept.boxes.tolist(), kept.scores.tolist(), kept.label_ids.tolist(), strict=True
                )
            ]
            annotated = None
            if formats[i]:
                captions = [(d.label, d.score) for d in detections]
                annotated = draw_detections(image, [d.box for d in detections], captions, formats[i])
            results[i] = ImageDetections(self.name, int(width), int(height), detections, annotated)
        return results

    def _warm_up(self) -> None:
        """One forward at load: CUDA context and kernels are ready before the first
        request, and a model that cannot run fails at start-up, not on a client's call."""
        blank = torch.zeros(3, 64, 64, dtype=torch.uint8, device=self.placement.device)
        with torch.inference_mode():
            self.backend.detect([blank], [self._query(DEFAULT_OPTIONS)], self.placement)

    def check_options(self, options: DetectOptions, annotate: str | None = None) -> None:
        """ValueError saying what is wrong with `options` (or the annotation format) for
        this model, if anything."""
        self._query(options, annotate)

    def _query(self, options: DetectOptions, annotate: str | None = None) -> Query:
        if annotate is not None and annotate not in ANNOTATION_MEDIA_TYPES:
            raise ValueError(f"annotate must be one of {', '.join(ANNOTATION_MEDIA_TYPES)}, got {annotate!r}")
        options.check()
        class_ids = None
        if options.classes is not None:
            class_ids = tuple(self._class_ids[c] for c in canonical_classes(options.classes, self.labels))
        return Query(options.score_threshold, options.max_detections, class_ids)
