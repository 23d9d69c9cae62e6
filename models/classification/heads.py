"""A classifier's final linear layer: found in any network, replaced for new labels.

Every classifier PAIS loads (EfficientNet-Lite, torchvision's, transformers') ends in one
`nn.Linear` from pooled features to class scores, registered last. Its input is the
image embedding (`ImageClassifier.embed_many`); swapping it for one with other outputs is
what a custom classifier trained on a user's labels changes in the network.
"""

from __future__ import annotations

from torch import nn


def final_linear(network: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """(parent module, attribute name, layer) of the last `nn.Linear` the network registers."""
    found = None
    for name, module in network.named_modules():
        if isinstance(module, nn.Linear):
            found = name
    if found is None:
        raise ValueError(f"{type(network).__name__} has no linear classification layer")
    parent_name, _, attribute = found.rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    return parent, attribute, getattr(parent, attribute)


def replace_head(network: nn.Module, classes: int) -> nn.Linear:
    """Give the network a fresh final layer with `classes` outputs (same input width) and
    return it; a layer that already has that many outputs is kept."""
    parent, attribute, layer = final_linear(network)
    if layer.out_features == classes:
        return layer
    head = nn.Linear(layer.in_features, classes, bias=layer.bias is not None)
    setattr(parent, attribute, head)
    return head
