"""Where a runtime runs: device, compute dtype and memory layout.

Defaults follow the project convention: CUDA when present with fp16, else CPU fp32.
channels_last is on for both: on this project's 2-core CPU it made EfficientNet-Lite0's
forward 1.6x faster (0.23 s vs 0.37 s for a batch of 16), and on GPUs it is what the
tensor cores want. Every choice can be forced, which is how reduced precision is
exercised by the CPU test suite.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    # The input paths tuned for accelerators: one batched decode_jpeg call (nvJPEG) and
    # resizing in the compute dtype. On by default on CUDA; the CPU suite turns it on to
    # run them.
    accelerated: bool = False

    def place(self, module: torch.nn.Module) -> torch.nn.Module:
        """`module` in eval mode on this device, dtype and memory layout."""
        module = module.eval().to(self.device, self.dtype)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def describe(self) -> str:
        layout = ", channels_last" if self.channels_last else ""
        return f"{self.device} {str(self.dtype).removeprefix('torch.')}{layout}"  # cuda:1, not cuda


def choose_placement(
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    channels_last: bool | None = None,
    accelerated: bool | None = None,
) -> Placement:
    """Resolve "auto"/None choices; raises ValueError for a device that is not there."""
    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    on_gpu = resolved.type == "cuda"
    if dtype in (None, "", "auto"):
        resolved_dtype = torch.float16 if on_gpu else torch.float32
    elif isinstance(dtype, torch.dtype):
        resolved_dtype = dtype
    else:
        try:
            resolved_dtype = DTYPES[dtype]
        except KeyError:
            raise ValueError(f"unknown dtype {dtype!r}; accepted: {', '.join(DTYPES)}") from None
    if channels_last is None:
        channels_last = True
    if accelerated is None:
        accelerated = on_gpu
    return Placement(resolved, resolved_dtype, channels_last, accelerated)
