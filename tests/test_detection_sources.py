"""Non-default detector sources, each through its real loading code with small local
artifacts: torchvision detectors' state_dicts in a temporary torch hub cache, a tiny
transformers DETR saved with save_pretrained (directory and hub-cache entry), and a
snapshot archive on moto's S3. Where the library has its own pipeline, PAIS's answer is
compared with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.detection import DetectOptions, ObjectDetector
from models.sources import SourceError

from .artifacts import CARD, hub_cache_entry, offline_torch_hub, place_checkpoint, snapshot_on_s3
from .images import composite, encode, photo

TINY_LABELS = {0: "cat", 1: "dog", 2: "cup"}
EVERYTHING = DetectOptions(score_threshold=0.0, max_detections=300)


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A seeded random model with its weights jittered, so that scores differ from one
    another (a plain init scores every class alike, and ties make orderings arbitrary).
    The small Faster R-CNN (MobileNetV3, 320 px) stands in for the torchvision family in
    most tests: it is quick on a CPU and, jittered, gives every detection its own score."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


def _as_tuples(result) -> list[tuple[str, float, tuple]]:
    return [(d.label, d.score, d.box) for d in result.detections]


# --- torchvision -------------------------------------------------------------------


@pytest.fixture
def torch_hub(tmp_path, monkeypatch):
    """Places a seeded random torchvision detector in an offline torch hub cache."""
    checkpoints = offline_torch_hub(monkeypatch, tmp_path / "torch")

    def place(arch: str, jitter: bool = True) -> torch.nn.Module:
        from torchvision.models import get_model, get_model_weights

        weights = get_model_weights(arch).DEFAULT
        torch.manual_seed(0)
        model = get_model(
            arch, weights=None, weights_backbone=None, num_classes=len(weights.meta["categories"])
        )
        if jitter:
            _perturbed(model)
        model.eval()
        place_checkpoint(checkpoints, weights, model)
        return model

    return place


def _assert_same_as_torchvision(arch: str, model: torch.nn.Module, image: np.ndarray, ours) -> None:
    """`ours` is what the torchvision model itself answers (its limits opened like PAIS's),
    less the placeholder ids ("N/A") torchvision's COCO list keeps and PAIS never reports."""
    from torchvision.models import get_model_weights

    holder = getattr(model, "roi_heads", model)
    holder.score_thresh, holder.detections_per_img = 0.0, 300
    with torch.inference_mode():
        reference = model([image_tensor(image).float() / 255])[0]
    categories = get_model_weights(arch).DEFAULT.meta["categories"]
    expected = [
        (categories[label], score, tuple(box))
        for label, score, box in zip(
            reference["labels"].tolist(),
            reference["scores"].tolist(),
            reference["boxes"].tolist(),
            strict=True,
        )
        if categories[label] != "N/A"
    ]
    _assert_same_detections(_as_tuples(ours), expected)


def _assert_same_detections(
    ours: list[tuple[str, float, tuple]], expected: list[tuple[str, float, tuple]]
) -> None:
    """The same detections: labels equal, scores within 1e-5, boxes within 0.06 px. Both
    lists are sorted by score, so their order is the same except among scores tied within
    that tolerance, whose order follows the CPU's summation order (two near-tied boxes
    came out swapped on some CPUs): those are matched in any order."""
    assert len(ours) == len(expected) > 0
    scores = [score for _, score, _ in ours]
    assert scores == sorted(scores, reverse=True)
    unmatched = list(ours)
    for label, score, box in expected:
        match = next(
            (
                got
                for got in unmatched
                if got[0] == label
                and abs(got[1] - score) <= 1e-5
                and max(abs(a - b) for a, b in zip(got[2], box, strict=True)) <= 0.06
            ),
            None,
        )
        assert match is not None, f"no detection like {(label, score, box)} in ours"
        unmatched.remove(match)


def test_near_tied_detections_match_in_either_order():
    first, second = ("cup", 0.5, (1.0, 2.0, 3.0, 4.0)), ("cat", 0.5 + 1e-7, (5.0, 6.0, 7.0, 8.0))
    _assert_same_detections([second, first], [first, second])
    with pytest.raises(AssertionError, match="no detection like"):
        _assert_same_detections([second, ("cup", 0.5, (1.0, 2.0, 3.0, 4.2))], [first, second])
    low, high = ("cup", 0.4, (0, 0, 1, 1)), ("cat", 0.6, (0, 0, 1, 1))
    with pytest.raises(AssertionError):  # ours out of score order
        _assert_same_detections([low, high], [low, high])


def test_torchvision_source_matches_torchvision_own_answer(torch_hub):
    arch = "fasterrcnn_mobilenet_v3_large_320_fpn"
    model = torch_hub(arch)
    # channels_last off: the same memory layout as the reference, so near-tied scores keep their order
    detector = ObjectDetector.load(f"torchvision:{arch}", device="cpu", channels_last=False)
    image = photo("coffee")
    (ours,) = detector.detect_many([encode(image, "PNG")], EVERYTHING)
    _assert_same_as_torchvision(arch, model, image, ours)
    assert detector.info.version.endswith(":COCO_V1")
    assert "COCO" in detector.info.licence and "ImageNet" in detector.info.licence
    assert "N/A" not in detector.labels and len(detector.labels) == 80


def test_stronger_torchvision_source_is_wired_for_frame_filling_objects(torch_hub):
    """README's fix for what YOLOv3-tiny misses (a person filling the frame):
    `torchvision:fasterrcnn_resnet50_fpn_v2` loads from the hub cache and answers on the
    full-size photo exactly what torchvision's model answers (seeded random weights here,
    since no test may download; with the real COCO weights it finds the astronaut)."""
    arch = "fasterrcnn_resnet50_fpn_v2"
    model = torch_hub(arch, jitter=False)  # its random init scores vary already
    detector = ObjectDetector.load(f"torchvision:{arch}", device="cpu", channels_last=False)
    assert detector.info.details["min_size"] == [800]
    image = photo("astronaut")
    (ours,) = detector.detect_many([image_tensor(image)], EVERYTHING)
    _assert_same_as_torchvision(arch, model, image, ours)


def image_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.copy()).permute(2, 0, 1)


def test_torchvision_options_reach_the_model(torch_hub):
    torch_hub("fasterrcnn_mobilenet_v3_large_320_fpn")
    detector = ObjectDetector.load("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", device="cpu")
    image = image_tensor(photo("chelsea"))
    (everything,) = detector.detect_many([image], EVERYTHING)
    top = everything.detections[0].label
    (only,) = detector.detect_many([image], DetectOptions(0.0, 5, classes=(top,)))
    same_label = [d.score for d in everything.detections if d.label == top]
    assert {d.label for d in only.detections} == {top}
    assert [d.score for d in only.detections] == pytest.approx(same_label[:5], abs=1e-6)
    cut = everything.detections[9].score
    (strict,) = detector.detect_many([image], DetectOptions(score_threshold=cut, max_detections=300))
    assert [d.score for d in strict.detections] == [d.score for d in everything.detections if d.score >= cut]


def test_torchvision_reduced_precision_runs_on_cpu(torch_hub):
    """fp16 runs as autocast over fp32 weights; the same path CUDA takes."""
    torch_hub("fasterrcnn_mobilenet_v3_large_320_fpn")
    fp32 = ObjectDetector.load("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", device="cpu")
    fp16 = ObjectDetector.load(
        "torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", device="cpu", dtype="fp16"
    )
    image = image_tensor(photo("coffee"))
    options = DetectOptions(score_threshold=0.0, max_detections=5)
    (a,), (b,) = fp32.detect_many([image], options), fp16.detect_many([image], options)
    assert next(fp16.backend.parameters()).dtype == torch.float32
    assert a.detections[0].label == b.detections[0].label
    assert a.detections[0].score == pytest.approx(b.detections[0].score, abs=0.01)


def test_torchvision_errors_say_what_to_do(torch_hub):
    torch_hub("fasterrcnn_mobilenet_v3_large_320_fpn")
    with pytest.raises(SourceError, match="available: COCO_V1"):
        ObjectDetector.load("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn:NOPE", device="cpu")
    with pytest.raises(SourceError, match="no detection model 'resnet50'"):
        ObjectDetector.load("torchvision:resnet50", device="cpu")
    with pytest.raises(SourceError, match="torch hub cache"):
        ObjectDetector.load("torchvision:retinanet_resnet50_fpn_v2", device="cpu")


def test_torchvision_snapshot_round_trip(torch_hub, tmp_path):
    torch_hub("fasterrcnn_mobilenet_v3_large_320_fpn")
    detector = ObjectDetector.load("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", device="cpu")
    detector.save(tmp_path / "snap")
    reloaded = ObjectDetector.load(str(tmp_path / "snap"), device="cpu")
    image = image_tensor(photo("coffee"))
    (a,), (b,) = detector.detect_many([image], EVERYTHING), reloaded.detect_many([image], EVERYTHING)
    assert [d.label for d in a.detections] == [d.label for d in b.detections]
    assert [d.score for d in a.detections] == pytest.approx([d.score for d in b.detections], abs=1e-5)
    assert reloaded.info.version == detector.info.version


# --- Hugging Face ------------------------------------------------------------------


def _save_tiny_detr(directory: Path, card: str | None = None) -> None:
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

    backbone = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], out_features=["stage4"]
    )
    config = DetrConfig(
        backbone_config=backbone,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=12,
        num_labels=3,
        id2label=TINY_LABELS,
        label2id={v: k for k, v in TINY_LABELS.items()},
    )
    torch.manual_seed(0)
    _perturbed(DetrForObjectDetection(config)).save_pretrained(directory)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(directory)
    if card:
        (directory / "README.md").write_text(card)


def test_hf_directory_matches_the_transformers_pipeline(tmp_path):
    from PIL import Image
    from transformers import pipeline

    _save_tiny_detr(tmp_path / "tiny-detr")
    detector = ObjectDetector.load(str(tmp_path / "tiny-detr"), device="cpu")
    image = photo("chelsea")
    height, width = image.shape[:2]
    (ours,) = detector.detect_many([encode(image, "PNG")], EVERYTHING)
    reference = pipeline("object-detection", model=str(tmp_path / "tiny-detr"))(
        Image.fromarray(image), threshold=0.0
    )
    reference.sort(key=lambda r: -r["score"])
    assert len(ours.detections) == len(reference) == 12
    for detection, expected in zip(ours.detections, reference, strict=True):
        assert detection.label == expected["label"]
        # transformers resizes with PIL, PAIS with torch on the device: close, not equal
        assert detection.score == pytest.approx(expected["score"], abs=0.01)
        box = expected["box"]  # the pipeline rounds to whole pixels and does not clip
        clipped = (
            min(max(box["xmin"], 0), width),
            min(max(box["ymin"], 0), height),
            min(max(box["xmax"], 0), width),
            min(max(box["ymax"], 0), height),
        )
        assert detection.box == pytest.approx(clipped, abs=4)
    assert detector.labels == ["cat", "dog", "cup"]
    assert detector.info.name == "tiny-detr" and detector.info.licence.startswith("unknown")


def test_hf_batches_images_of_different_sizes(tmp_path):
    _save_tiny_detr(tmp_path / "tiny-detr")
    detector = ObjectDetector.load(str(tmp_path / "tiny-detr"), device="cpu")
    images = [photo("chelsea"), photo("coffee"), composite(["chelsea"], tile=200)[0], photo("chelsea")]
    together = detector.detect_many([image_tensor(i) for i in images], EVERYTHING)
    for image, result in zip(images, together, strict=True):
        (alone,) = detector.detect_many([image_tensor(image)], EVERYTHING)
        assert [d.label for d in result.detections] == [d.label for d in alone.detections]
        assert [d.score for d in result.detections] == pytest.approx(
            [d.score for d in alone.detections], abs=1e-4
        )
        for a, b in zip(result.detections, alone.detections, strict=True):
            assert a.box == pytest.approx(b.box, abs=0.2)


def test_hf_hub_id_loads_offline_from_the_hub_cache(tmp_path, monkeypatch):
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    _save_tiny_detr(hub_cache_entry(monkeypatch, tmp_path / "hub", "pais-test/tiny-detr", commit), card=CARD)
    detector = ObjectDetector.load("hf:pais-test/tiny-detr", device="cpu")
    assert (detector.info.name, detector.info.version, detector.info.licence) == (
        "pais-test/tiny-detr",
        commit[:12],
        "apache-2.0",
    )
    (result,) = detector.detect_many([image_tensor(photo("coffee"))], DetectOptions(0.0, 3))
    assert len(result.detections) == 3


def test_hf_snapshot_round_trip_and_reduced_precision(tmp_path):
    _save_tiny_detr(tmp_path / "tiny-detr")
    detector = ObjectDetector.load(str(tmp_path / "tiny-detr"), device="cpu")
    detector.save(tmp_path / "snap")
    reloaded = ObjectDetector.load(str(tmp_path / "snap"), device="cpu")
    half = ObjectDetector.load(str(tmp_path / "snap"), device="cpu", dtype="fp16")
    image = image_tensor(photo("chelsea"))
    (a,), (b,), (c,) = (d.detect_many([image], EVERYTHING) for d in (detector, reloaded, half))
    assert _as_tuples(a) == _as_tuples(b)
    assert [d.label for d in c.detections[:3]] == [d.label for d in a.detections[:3]]
    assert c.detections[0].score == pytest.approx(a.detections[0].score, abs=0.01)


def test_directory_of_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("no model here")
    with pytest.raises(SourceError, match="neither a PAIS snapshot"):
        ObjectDetector.load(str(tmp_path), device="cpu")
    with pytest.raises(SourceError, match="packaged detectors: yolov3-tiny"):
        ObjectDetector.load("packaged:yolov9", device="cpu")


# --- S3 ------------------------------------------------------------------------------


def test_s3_snapshot_archive_source(moto_endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("PAIS_CACHE_DIR", str(tmp_path / "cache"))
    packaged = ObjectDetector.load("default", device="cpu")
    packaged.save(tmp_path / "snap")
    uri = snapshot_on_s3(tmp_path / "snap", "pais-detectors", "detection/model.tar.gz")
    from_s3 = ObjectDetector.load(uri, device="cpu")
    assert from_s3.info.version == packaged.info.version
    image, _ = composite(["astronaut", "chelsea", "coffee"])
    assert from_s3.detect([image])[0].detections == packaged.detect([image])[0].detections
