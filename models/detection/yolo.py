"""Darknet YOLO as a detector backend: letterbox on the device, one batched forward,
decode of the [yolo] heads, class-aware NMS for the whole batch in one call.

Follows Darknet's own test path (`letterbox_image`, `get_yolo_detections`,
`correct_yolo_boxes`, `do_nms_sort`): the image is scaled to fit the network input keeping
its aspect ratio and centred on grey (0.5); a detection is a (box, class) pair scored
objectness x class probability, so a box can carry several classes (multi-label, as
Darknet); NMS runs per class at IoU 0.45. Resizing uses antialiasing, which Darknet's own
bilinear resize lacks: large photos shrink to 416 px without aliasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchvision.ops import batched_nms
from torchvision.transforms.v2 import functional as TF

from ..device import Placement
from ..loading import WEIGHTS_FILE, save_weights
from .backend import Candidates, DetectorBackend, Query
from .darknet import Darknet

CFG_FILE = "darknet.cfg"
NMS_IOU = 0.45  # Darknet's test-time NMS threshold
PRE_NMS_TOP_K = 4000  # candidates per image entering NMS (a threshold of 0 would pass ~200k)


@dataclass(frozen=True)
class Letterbox:
    """Where an image went inside the network input: scale, then offset."""

    scale_x: float
    scale_y: float
    offset_x: int
    offset_y: int

    def to_image(self, boxes: torch.Tensor) -> torch.Tensor:
        """(K, 4) xyxy in network-input pixels -> the same boxes in image pixels."""
        offset = boxes.new_tensor([self.offset_x, self.offset_y, self.offset_x, self.offset_y])
        scale = boxes.new_tensor([self.scale_x, self.scale_y, self.scale_x, self.scale_y])
        return (boxes - offset) / scale


def letterbox_batch(
    images: Sequence[torch.Tensor], size: tuple[int, int], placement: Placement
) -> tuple[torch.Tensor, list[Letterbox]]:
    """uint8 (3, H, W) images -> an (N, 3, h, w) batch in [0, 1], each image scaled to fit
    and centred on grey, plus how to map boxes back."""
    net_h, net_w = size
    batch = torch.full((len(images), 3, net_h, net_w), 0.5, dtype=placement.dtype, device=placement.device)
    placements = []
    for i, image in enumerate(images):
        height, width = image.shape[-2:]
        scale = min(net_w / width, net_h / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = TF.resize(image.to(placement.device), [new_h, new_w], antialias=True)
        x0, y0 = (net_w - new_w) // 2, (net_h - new_h) // 2
        batch[i, :, y0 : y0 + new_h, x0 : x0 + new_w] = resized.to(placement.dtype) / 255
        placements.append(Letterbox(new_w / width, new_h / height, x0, y0))
    if placement.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch, placements


def decode_heads(outputs: Sequence[torch.Tensor], network: Darknet) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw [yolo] maps -> boxes (N, M, 4) xyxy in network-input pixels and class scores
    (N, M, C) = objectness x class probability, for all M anchors of all heads (fp32)."""
    net_h, net_w = network.input_size
    all_boxes, all_scores = [], []
    for raw, head in zip(outputs, network.heads, strict=True):
        n, _, grid_h, grid_w = raw.shape
        a = len(head.anchors)
        x = raw.float().view(n, a, 5 + head.classes, grid_h, grid_w).permute(0, 1, 3, 4, 2)
        ys, xs = torch.meshgrid(
            torch.arange(grid_h, device=raw.device), torch.arange(grid_w, device=raw.device), indexing="ij"
        )
        xy = x[..., :2].sigmoid() * head.scale_xy - (head.scale_xy - 1) / 2
        cx = (xy[..., 0] + xs) * (net_w / grid_w)
        cy = (xy[..., 1] + ys) * (net_h / grid_h)
        anchors = torch.tensor(head.anchors, device=raw.device, dtype=torch.float32).view(1, a, 1, 1, 2)
        wh = x[..., 2:4].exp() * anchors
        boxes = torch.stack(
            [cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], dim=-1
        )
        scores = x[..., 4:5].sigmoid() * x[..., 5:].sigmoid()
        all_boxes.append(boxes.reshape(n, -1, 4))
        all_scores.append(scores.reshape(n, -1, head.classes))
    return torch.cat(all_boxes, 1), torch.cat(all_scores, 1)


class YoloBackend(DetectorBackend):
    def __init__(self, network: Darknet, labels: list[str], arch: str):
        super().__init__()
        if len(labels) != network.num_classes:
            raise ValueError(f"{len(labels)} labels for a network of {network.num_classes} classes")
        self.network = network
        self.labels = labels
        self.arch = arch

    def describe(self) -> dict[str, Any]:
        return {"input_size": list(self.network.input_size)}

    def save(self, directory: Path) -> dict[str, Any]:
        (directory / CFG_FILE).write_text(self.network.cfg_text)
        save_weights(self.network, directory / WEIGHTS_FILE)
        return {}

    def detect(
        self, images: Sequence[torch.Tensor], queries: Sequence[Query], placement: Placement
    ) -> list[Candidates]:
        batch, letterboxes = letterbox_batch(images, self.network.input_size, placement)
        boxes, scores = decode_heads(self.network(batch), self.network)
        n, _, classes = scores.shape
        thresholds = torch.tensor([q.score_threshold for q in queries], device=scores.device)
        passing = scores >= thresholds.view(n, 1, 1)
        for i, query in enumerate(queries):
            if query.class_ids is not None:
                allowed = torch.zeros(classes, dtype=torch.bool, device=scores.device)
                allowed[list(query.class_ids)] = True
                passing[i] &= allowed
        # The best PRE_NMS_TOP_K (anchor, class) pairs of each image enter one NMS call.
        flat = torch.where(passing, scores, -1.0).view(n, -1)
        top_scores, top_index = flat.topk(min(PRE_NMS_TOP_K, flat.shape[1]), dim=1)
        image_index = torch.arange(n, device=scores.device).view(n, 1).expand_as(top_index)
        valid = top_scores >= 0
        image_index, top_index, top_scores = image_index[valid], top_index[valid], top_scores[valid]
        anchor_index, class_index = top_index // classes, top_index % classes
        candidate_boxes = boxes[image_index, anchor_index]
        keep = batched_nms(candidate_boxes, top_scores, image_index * classes + class_index, NMS_IOU)
        image_index, class_index = image_index[keep], class_index[keep]
        candidate_boxes, top_scores = candidate_boxes[keep], top_scores[keep]
        results = []
        for i, (letterbox, query) in enumerate(zip(letterboxes, queries, strict=True)):
            mine = (image_index == i).nonzero().squeeze(1)[: query.max_detections]  # NMS sorts by score
            results.append(
                Candidates(letterbox.to_image(candidate_boxes[mine]), top_scores[mine], class_index[mine])
            )
        return results
