"""The pretrained base network, and which of its parameters each mode trains.

    head      only a new final layer, on frozen features
    finetune  the new final layer, plus the last N blocks of the backbone and every layer
              after them (at a lower learning rate)
    full      everything, from the pretrained initialisation (backbone at the lower rate)

"Blocks" are the children of the network's longest ModuleList/Sequential (EfficientNet-
Lite0's 16 MBConv blocks, a torchvision EfficientNet's stages, a ViT's encoder layers),
so the rule holds for every base the classification runtime loads.
"""

from __future__ import annotations

import torch
from torch import nn

from ..classification import loaders
from ..classification.heads import final_linear
from ..classification.loaders import LoadedClassifier
from ..classification.preprocess import Preprocess
from ..sources import parse_source
from .config import ConfigError


def load_base(source: str) -> LoadedClassifier:
    loaded = loaders.load(parse_source(source))
    if loaded.arch == "hf":
        # A transformers model stores its head size in its config; a snapshot of a resized
        # one would need that config rewritten too, which is not done yet.
        raise ConfigError(
            f"--base {source}: transformers models cannot be fine-tuned yet; use a packaged: or "
            "torchvision: classifier, or a PAIS snapshot of one"
        )
    try:
        final_linear(loaded.network)
    except ValueError as error:
        raise ConfigError(f"--base {source}: {error}; it cannot be given new labels") from None
    return loaded


def training_preprocess(base: Preprocess, size: int) -> Preprocess:
    """The base's normalisation at a square input of `size`. The whole image is resized
    (no crop): a user's object may fill the frame, and a crop learnt around could cut it."""
    return Preprocess(
        resize=(size, size), crop=None, mean=base.mean, std=base.std, interpolation=base.interpolation
    )


def split_parameters(
    network: nn.Module, mode: str, finetune_blocks: int
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone parameters to train, head parameters); every other parameter is frozen
    (requires_grad off, so autograd keeps no activations for the frozen front)."""
    head = final_linear(network)[2]
    head_ids = {id(p) for p in head.parameters()}
    backbone = [p for p in network.parameters() if id(p) not in head_ids]
    if mode == "head":
        trainable: list[nn.Parameter] = []
    elif mode == "full":
        trainable = backbone
    else:
        first = _first_parameter_of_last_blocks(network, head, finetune_blocks)
        start = next(i for i, p in enumerate(backbone) if p is first)
        trainable = backbone[start:]
    trainable_ids = {id(p) for p in trainable}
    for parameter in backbone:
        parameter.requires_grad_(id(parameter) in trainable_ids)
    for parameter in head.parameters():
        parameter.requires_grad_(True)
    return trainable, list(head.parameters())


def train_mode(network: nn.Module) -> None:
    """Training mode with every BatchNorm kept on its pretrained statistics (its scale and
    shift still train where unfrozen). Batch statistics of a few hundred images a class
    are noisy, and moving the running statistics shifts the features under the head that
    the linear probe fitted: measured on Fashion-MNIST (80 images a class, finetune), 0.76
    validation accuracy with BatchNorm in training mode against the probe's 0.815."""
    network.train()
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _first_parameter_of_last_blocks(network: nn.Module, head: nn.Module, count: int) -> nn.Parameter:
    candidates = [
        module
        for module in network.modules()
        if isinstance(module, (nn.ModuleList, nn.Sequential))
        and not any(m is head for m in module.modules())
        and any(True for _ in module.parameters())
    ]
    if not candidates:
        raise ConfigError(f"{type(network).__name__} has no block list to fine-tune; use --mode head or full")
    blocks = max(candidates, key=len)
    chosen = list(blocks)[-min(count, len(blocks)) :]
    for block in chosen:
        for parameter in block.parameters():
            return parameter
    raise ConfigError("the last blocks have no parameters to train")


def fold_standardisation(linear: nn.Linear, mean: torch.Tensor, std: torch.Tensor) -> nn.Linear:
    """A linear layer trained on (x - mean) / std, rewritten to take x itself, so the
    served network is the base network with a plain final layer."""
    folded = nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        folded.weight.copy_(linear.weight / std)
        folded.bias.copy_(linear.bias - (linear.weight * mean / std).sum(dim=1))
    return folded
