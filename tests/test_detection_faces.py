"""`packaged:mtcnn-faces`: MTCNN face detection with the weights facenet-pytorch ships."""

from __future__ import annotations

import pytest

from models.detection import ObjectDetector

from .images import composite, encode, inside, photo


@pytest.fixture(scope="module")
def faces() -> ObjectDetector:
    return ObjectDetector.load("packaged:mtcnn-faces", device="cpu")


def test_finds_the_astronauts_face_and_no_face_on_a_cat(faces):
    full, cat = faces.detect([encode(photo("astronaut"), "PNG"), photo("chelsea")])
    (face,) = full.detections
    assert face.label == "face" and face.score > 0.99
    # her face: between the hair line and the collar, left of the flag's edge
    assert inside(face.box, (160, 40, 290, 190), margin=0)
    assert cat.detections == []
    image, tiles = composite(["chelsea", "astronaut", "coffee"])
    (scene,) = faces.detect([image])
    (small,) = scene.detections
    assert inside(small.box, tiles[1], margin=0)


def test_model_card_and_reduced_precision(faces):
    info = faces.info
    assert (info.name, info.source) == ("mtcnn-faces", "packaged:mtcnn-faces")
    assert info.version.startswith("facenet-pytorch==2.6.0+sha256.")
    assert "WIDER FACE" in info.licence and "facenet-pytorch" in info.origin
    assert faces.labels == ["face"]
    half = ObjectDetector.load("packaged:mtcnn-faces", device="cpu", dtype="fp16")
    (a,), (b,) = faces.detect([photo("astronaut")]), half.detect([photo("astronaut")])
    assert len(a.detections) == len(b.detections) == 1
    assert b.detections[0].box == pytest.approx(a.detections[0].box, abs=4)


def test_snapshot_round_trip(faces, tmp_path):
    faces.save(tmp_path / "snap")
    reloaded = ObjectDetector.load(str(tmp_path / "snap"), device="cpu")
    assert reloaded.info.version == faces.info.version
    images = [photo("astronaut"), composite(["astronaut", "coffee"])[0]]
    assert [r.detections for r in reloaded.detect(images)] == [r.detections for r in faces.detect(images)]
