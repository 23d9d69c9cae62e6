"""Header checks and decoding: formats, EXIF orientation, bad files, the batched path."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from models.image_header import ImageError, sniff
from models.imaging import decode, decode_many, pixel_chunks, to_rgb_tensor

from .hostile import mpo_jpeg
from .images import animated_gif, encode, photo, png_bomb, with_exif_orientation

CAT = photo("chelsea")  # 300 x 451


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt):
    data = encode(CAT, fmt)
    header = sniff(data)
    assert (header.format, header.width, header.height) == (fmt, 451, 300)
    image = decode(data)
    assert image.shape == (3, 300, 451) and image.dtype == torch.uint8
    # same photo: mean absolute difference small for lossless and lossy formats alike
    assert (image.permute(1, 2, 0).float() - torch.from_numpy(CAT).float()).abs().mean() < 12


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(orientation):
    data = with_exif_orientation(CAT, orientation)
    header = sniff(data)
    assert (header.width, header.height) == (451, 300)  # the upright size, before decoding
    image = decode(data)
    assert image.shape == (3, 300, 451)
    assert (image.permute(1, 2, 0).float() - torch.from_numpy(CAT).float()).abs().mean() < 6


def test_gif_first_frame_is_the_image():
    other = photo("coffee")[:300, :451]
    image = decode(animated_gif(CAT, other))
    assert image.shape == (3, 300, 451)
    error_cat = (image.permute(1, 2, 0).float() - torch.from_numpy(CAT).float()).abs().mean()
    error_other = (image.permute(1, 2, 0).float() - torch.from_numpy(other).float()).abs().mean()
    assert error_cat < 15 < error_other


def test_sixteen_bit_and_grayscale_png_become_rgb_uint8():
    from PIL import Image

    gray = Image.fromarray(CAT).convert("L")
    sixteen_bit = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)  # full 16-bit range
    assert sixteen_bit.mode == "I;16"
    for image in (gray, sixteen_bit):
        decoded = decode(encode(image, "PNG"))
        assert decoded.shape == (3, 300, 451) and decoded.dtype == torch.uint8
        assert decoded.float().mean() > 20  # not blank after the 16 -> 8 bit conversion


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty"),
        (b"hello, I am text", "unsupported"),
        (encode(CAT, "BMP"), "unsupported"),
        (encode(CAT, "TIFF"), "unsupported"),
    ],
    ids=["empty", "text", "bmp", "tiff"],
)
def test_header_refusals(data, kind):
    with pytest.raises(ImageError) as info:
        sniff(data)
    assert info.value.kind == kind
    if kind == "unsupported":
        assert "JPEG, PNG, WebP or GIF" in info.value.message


def test_decompression_bomb_is_refused_from_the_header():
    with pytest.raises(ImageError) as info:
        sniff(png_bomb(30000, 30000))
    assert info.value.kind == "too_large"
    assert "900000000 pixels" in info.value.message


def test_pixel_limit_is_a_parameter():
    with pytest.raises(ImageError, match="451x300"):
        sniff(encode(CAT, "PNG"), max_pixels=100_000)


@pytest.mark.parametrize("batched", [False, True], ids=["per-image", "batched-jpeg"])
def test_one_bad_image_does_not_fail_the_batch(batched):
    good = encode(CAT, "JPEG")
    truncated = good[: len(good) // 2]
    results = decode_many([good, truncated, encode(CAT, "PNG"), b""], batched_jpeg=batched)
    assert isinstance(results[0], torch.Tensor) and results[0].shape == (3, 300, 451)
    assert isinstance(results[1], ImageError) and results[1].kind == "corrupt"
    assert "truncated" in results[1].message and ".cpp" not in results[1].message
    assert isinstance(results[2], torch.Tensor)
    assert isinstance(results[3], ImageError) and results[3].kind == "empty"


def test_batched_jpeg_decode_matches_per_image_decode():
    datas = [encode(CAT, "JPEG"), encode(photo("coffee"), "JPEG"), with_exif_orientation(CAT, 6)]
    for one, many in zip(
        decode_many(datas, batched_jpeg=False), decode_many(datas, batched_jpeg=True), strict=True
    ):
        assert torch.equal(one, many)


def test_notebook_inputs_are_normalised(tmp_path):
    from PIL import Image

    path = tmp_path / "cat.png"
    path.write_bytes(encode(CAT, "PNG"))
    assert to_rgb_tensor(path) == path.read_bytes()
    assert to_rgb_tensor(str(path)) == path.read_bytes()
    from_pil = to_rgb_tensor(Image.fromarray(CAT))
    from_array = to_rgb_tensor(CAT)
    assert torch.equal(from_pil, from_array) and from_array.shape == (3, 300, 451)
    with pytest.raises(ImageError, match="HxWx3"):
        to_rgb_tensor(CAT[:, :, :2])


def _tagged(fmt: str, orientation: int) -> tuple[bytes, np.ndarray]:
    """An image stored as is, tagged with an EXIF orientation, and what PIL displays."""
    import io

    from PIL import Image, ImageOps

    image = Image.fromarray(CAT[:120, :200])
    exif = image.getexif()
    exif[0x0112] = orientation
    data = encode(image, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt != "PNG" else {}))
    return data, np.array(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


@pytest.mark.parametrize("batched", [False, True], ids=["per-image", "batched-jpeg"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_all_eight_orientations_match_pil(fmt, batched):
    """Every decode path (incl. the batched one CUDA uses, and WebP, which torchvision's
    decoder does not orient) applies the same orientation PIL displays."""
    cases = [_tagged(fmt, orientation) for orientation in range(1, 9)]
    decoded = decode_many([data for data, _ in cases], batched_jpeg=batched)
    for orientation, ((_, expected), image) in enumerate(zip(cases, decoded, strict=True), start=1):
        assert image.shape == (3, *expected.shape[:2]), orientation
        error = (image.permute(1, 2, 0).float() - torch.from_numpy(expected).float()).abs().mean()
        assert error < 3, (orientation, float(error))


def test_gifs_never_reach_the_all_frames_decoder(monkeypatch):
    """torchvision decodes every GIF frame at once (a 9 KB GIF of 200 frames needed 2.4 GB):
    animated images go through PIL, which decodes the first frame only."""
    import models.imaging as imaging

    def refuse(data, *args, **kwargs):
        raise AssertionError("an animated image reached decode_image")

    monkeypatch.setattr(imaging, "decode_image", refuse)
    other = photo("coffee")[:300, :451]
    assert sniff(animated_gif(CAT, other)).animated
    assert decode(animated_gif(CAT, other)).shape == (3, 300, 451)


def test_sniff_never_decodes_pixels(monkeypatch):
    """The gateway reads headers only: a PNG (whose EXIF PIL's getexif() would fetch by
    decoding the whole image) is checked without loading its pixels."""
    from PIL import ImageFile

    data, _ = _tagged("PNG", 6)
    big = png_bomb(8000, 8000)  # 64 MP, under PIL's own bomb threshold

    def refuse(self):
        raise AssertionError("sniff decoded the pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    assert sniff(data).orientation == 6 and (sniff(data).width, sniff(data).height) == (120, 200)
    with pytest.raises(ImageError, match="8000x8000"):
        sniff(big)


@pytest.mark.parametrize("batched", [False, True], ids=["per-image", "batched-jpeg"])
def test_a_multi_picture_jpeg_from_a_phone_is_a_jpeg(batched):
    """MPO (the photo, then a preview or depth map) is what PIL calls many phone JPEGs."""
    from PIL import Image

    data = mpo_jpeg()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "MPO" and image.n_frames == 2
    header = sniff(data)
    assert (header.format, header.media_type, header.width, header.height) == ("JPEG", "image/jpeg", 451, 300)
    (image,) = decode_many([data], batched_jpeg=batched)
    assert (
        image.permute(1, 2, 0).float() - torch.from_numpy(CAT).float()
    ).abs().mean() < 6  # the first picture


@pytest.mark.parametrize("batched", [False, True], ids=["per-image", "batched-jpeg"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
@pytest.mark.parametrize("kept", [0.5, 0.9, 0.99])
def test_truncated_images_are_corrupt(fmt, kept, batched):
    data = encode(CAT, fmt)
    (result,) = decode_many([data[: int(len(data) * kept)]], batched_jpeg=batched)
    assert isinstance(result, ImageError) and result.kind == "corrupt"


def test_batches_are_cut_by_decoded_pixels_as_well_as_by_count():
    small, large = encode(CAT, "JPEG"), png_bomb(8000, 8000)  # 135,300 and 64,000,000 pixels
    images = [
        small,
        small,
        large,
        small,
        large,
        large,
        b"not an image",
        torch.zeros(3, 10, 10, dtype=torch.uint8),
    ]
    assert pixel_chunks(images, max_items=64, max_pixels=100_000_000) == [
        slice(0, 4),
        slice(4, 5),
        slice(5, 8),
    ]
    assert pixel_chunks(images, max_items=2, max_pixels=10**12) == [
        slice(0, 2),
        slice(2, 4),
        slice(4, 6),
        slice(6, 8),
    ]
    assert pixel_chunks([large], max_items=64, max_pixels=1_000) == [
        slice(0, 1)
    ]  # alone when over on its own
    assert pixel_chunks([], max_items=64) == []


def test_a_runtime_never_holds_more_than_a_chunk_of_decoded_pixels(monkeypatch):
    """Eight 12-megapixel photos with a budget of 30 MP: decoded two at a time."""
    from models.classification import ImageClassifier
    from models.image_runtime import ImageRuntime

    photo_12mp = encode(np.asarray(Image.fromarray(CAT).resize((4000, 3000))), "JPEG", quality=80)
    held: list[int] = []
    decode_chunk = ImageRuntime._decode_chunk

    def measured(self, images):  # the real decode, with the pixels it returns counted
        slots = decode_chunk(self, images)
        held.append(sum(slot.shape[-1] * slot.shape[-2] for slot in slots if isinstance(slot, torch.Tensor)))
        return slots

    monkeypatch.setattr(ImageRuntime, "_decode_chunk", measured)
    classifier = ImageClassifier.load("default", device="cpu")
    classifier.chunk_pixels = 30_000_000
    results = classifier.classify_many([photo_12mp] * 8, top_k=1)
    assert held == [24_000_000] * 4
    assert len({r.predictions[0].label for r in results}) == 1  # the same photo, the same answer
