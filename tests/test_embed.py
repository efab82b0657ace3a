"""Image bytes for TFRecords: every result is decoded by TensorFlow itself, as the OD API does."""

from __future__ import annotations

import hashlib
import struct
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from factories import draw_image, write
from PIL import Image, ImageDraw, ImageFile, ImageOps

from annoconv.errors import AnnotationError
from annoconv.io.embed import EmbeddedImage, SkipImage, embed_image

ANN = "ann/photo.xml"


def decode(image: EmbeddedImage) -> np.ndarray[Any, Any]:
    """What the OD API decoder gets, checked against the size and digest we report."""
    pixels: np.ndarray[Any, Any] = tf.io.decode_image(image.data, channels=3).numpy()
    assert pixels.shape == (image.height, image.width, 3)
    assert image.sha256 == hashlib.sha256(image.data).hexdigest()
    return pixels


def rgb(image: Image.Image) -> np.ndarray[Any, Any]:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def assert_close(
    decoded: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], mean: float
) -> None:
    assert decoded.shape == expected.shape
    assert np.abs(decoded.astype(np.int16) - expected).mean() <= mean


def scene(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A picture that looks different under every flip and turn and survives JPEG."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    array = np.stack([x, y, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    array[: height // 4, : width // 3] = 0
    return Image.fromarray(array).convert(mode)


def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags


def save(image: Image.Image, path: Path, **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def reopened(image: EmbeddedImage) -> Image.Image:
    return Image.open(BytesIO(image.data))


# --- JPEG and PNG: byte for byte ------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "mode"),
    [
        (".jpg", "RGB"),
        (".jpg", "L"),
        (".jpg", "CMYK"),  # TF decodes (Adobe-inverted) CMYK JPEGs itself
        (".png", "RGB"),
        (".png", "RGBA"),
        (".png", "LA"),
        (".png", "P"),
        (".png", "L"),
        (".png", "1"),
    ],
)
def test_jpeg_and_png_are_embedded_byte_for_byte(tmp_path: Path, suffix: str, mode: str) -> None:
    path = draw_image(tmp_path / f"a{suffix}", 60, 40, mode=mode)
    image = embed_image(str(path), annotated_size=(60, 40), source=ANN)
    assert image.data == path.read_bytes()
    assert (image.format, image.width, image.height) == (suffix[1:].replace("jpg", "jpeg"), 60, 40)
    assert (image.transcoded, image.scale, image.note) == (False, None, None)
    assert_close(decode(image), rgb(Image.open(path)), mean=1.5)


def test_16_bit_png_is_embedded_and_tf_reads_its_high_byte(tmp_path: Path) -> None:
    array = (np.arange(40 * 30).reshape(30, 40) % 256 * 257).astype(np.uint16)
    path = save(Image.fromarray(array), tmp_path / "depth.png")
    image = embed_image(str(path), annotated_size=(40, 30))
    assert (image.data, image.transcoded) == (path.read_bytes(), False)
    assert (decode(image)[..., 0] == array // 257).all()


def test_a_jpg_holding_a_png_is_embedded_as_png(tmp_path: Path) -> None:
    path = draw_image(tmp_path / "liar.jpg", 50, 30, format="PNG")
    image = embed_image(str(path), annotated_size=(50, 30))
    assert (image.format, image.data, image.transcoded) == ("png", path.read_bytes(), False)
    decode(image)


def test_headers_alone_are_read_for_jpeg_and_png(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jpeg = draw_image(tmp_path / "a.jpg", 64, 48)
    png = draw_image(tmp_path / "b.png", 64, 48)

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for path in (jpeg, png):
        assert embed_image(str(path), annotated_size=(64, 48)).data == path.read_bytes()


# --- transcoding ----------------------------------------------------------------------------


def patent_page(path: Path, white_is_zero: bool) -> Path:
    """A 2560x3300 CCITT Group 4 drawing sheet, as USPTO ships them."""
    page = Image.new("1", (2560, 3300), 1)
    draw = ImageDraw.Draw(page)
    draw.rectangle((300, 400, 1800, 2600), outline=0, width=9)
    draw.line((0, 0, 2559, 3299), fill=0, width=3)
    draw.text((1200, 3000), "FIG. 12", fill=0)
    save(page, path, compression="group4")
    if white_is_zero:
        # Fax files often say PhotometricInterpretation 0: the same bits mean the opposite.
        data = path.read_bytes()
        entry = struct.pack("<HHIH", 262, 3, 1, 1)
        assert data.count(entry) == 1
        path.write_bytes(data.replace(entry, struct.pack("<HHIH", 262, 3, 1, 0)))
    return path


@pytest.mark.parametrize("white_is_zero", [False, True])
def test_group4_patent_page_becomes_a_1_bit_png_tf_decodes(
    tmp_path: Path, white_is_zero: bool
) -> None:
    path = patent_page(tmp_path / "280.tif", white_is_zero)
    image = embed_image(str(path), annotated_size=(2560, 3300), source=ANN)
    assert (image.format, image.width, image.height, image.transcoded) == ("png", 2560, 3300, True)
    assert reopened(image).mode == "1"
    decoded = decode(image)
    source = np.asarray(Image.open(path).convert("L"))
    assert (decoded == source[..., None]).all()  # black stays black, white stays white
    assert set(np.unique(decoded)) == {0, 255}
    assert decoded[400, 1000, 0] == source[400, 1000] == (255 if white_is_zero else 0)


def zlib_level(png: bytes) -> int:
    """The compression level a PNG's zlib stream header announces (FLEVEL: 0 fastest .. 3)."""
    start = png.index(b"IDAT") + 4
    return png[start + 1] >> 6


def test_png_level_trades_size_for_time_and_keeps_every_bilevel_pixel(tmp_path: Path) -> None:
    path = patent_page(tmp_path / "280.tif", white_is_zero=False)
    source = np.asarray(Image.open(path).convert("L"))
    default = embed_image(str(path), annotated_size=(2560, 3300))
    by_level = {
        level: embed_image(str(path), annotated_size=(2560, 3300), png_level=level)
        for level in (0, 1, 6, 9)
    }
    assert default.data == by_level[1].data  # level 1 is the default
    for level, image in by_level.items():
        assert (image.format, reopened(image).mode) == ("png", "1"), level
        assert (decode(image) == source[..., None]).all(), level
    # zlib's header says which: 0 for levels 0-1, 2 for 6 (its default), 3 for 9.
    assert [zlib_level(by_level[level].data) for level in (0, 1, 6, 9)] == [0, 0, 2, 3]
    sizes = [len(by_level[level].data) for level in (0, 1, 6, 9)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2560 * 3300 // 8


def float_tiff(path: Path) -> Path:
    array = np.linspace(-20, 300, 48 * 64, dtype=np.float32).reshape(48, 64)
    return save(Image.fromarray(array), path)


def opaque_rgba(path: Path) -> Path:
    return save(scene(64, 48, "RGBA"), path)


def transparent_webp(path: Path) -> Path:
    image = scene(64, 48, "RGBA")
    image.putalpha(Image.linear_gradient("L").resize((64, 48)))
    return save(image, path, lossless=True)


def transparent_gif(path: Path) -> Path:
    image = scene(64, 48).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    return save(image, path, transparency=0)


def wide_int_tiff(path: Path) -> Path:
    array = (np.arange(48 * 64).reshape(48, 64) * 30).astype(np.int32)
    return save(Image.fromarray(array), path)


@pytest.mark.parametrize(
    ("name", "make", "expected_format", "expected_mode", "tolerance"),
    [
        ("gray.tif", lambda p: save(scene(64, 48, "L"), p), "png", "L", 0),
        ("photo.tif", lambda p: save(scene(64, 48), p), "jpeg", "RGB", 2),
        ("lzw.tif", lambda p: save(scene(64, 48), p, compression="tiff_lzw"), "jpeg", "RGB", 2),
        ("cmyk.tif", lambda p: save(scene(64, 48, "CMYK"), p), "jpeg", "RGB", 2),
        ("ycbcr.tif", lambda p: save(scene(64, 48), p, compression="jpeg"), "jpeg", "RGB", 2),
        ("opaque.tif", opaque_rgba, "jpeg", "RGB", 2),
        ("depth16.tif", lambda p: save(scene(64, 48, "L").convert("I;16"), p), "png", "I;16", 0),
        ("int32.tif", wide_int_tiff, "png", "I;16", None),
        ("float.tif", float_tiff, "png", "L", 0),
        ("photo.bmp", lambda p: save(scene(64, 48), p), "jpeg", "RGB", 2),
        ("bilevel.bmp", lambda p: save(scene(64, 48, "1"), p), "png", "1", 0),
        ("photo.webp", lambda p: save(scene(64, 48), p, quality=90), "jpeg", "RGB", 2),
        ("alpha.webp", transparent_webp, "png", "RGBA", 0),
        ("palette.gif", lambda p: save(scene(64, 48).convert("P"), p), "png", "P", 0),
        ("transparent.gif", transparent_gif, "png", "P", 0),
    ],
)
def test_formats_tf_cannot_take_are_transcoded(
    tmp_path: Path,
    name: str,
    make: Any,
    expected_format: str,
    expected_mode: str,
    tolerance: float | None,
) -> None:
    path = make(tmp_path / name)
    image = embed_image(str(path), annotated_size=(64, 48), jpeg_quality=95)
    assert (image.format, image.width, image.height) == (expected_format, 64, 48)
    assert (image.transcoded, image.scale, image.note) == (True, None, None)
    assert reopened(image).mode == expected_mode
    decoded = decode(image)
    if tolerance is not None:
        source = Image.open(path)
        expected: np.ndarray[Any, Any]
        # 16-bit gray: TF keeps the high byte; float: clipped to 0-255; alpha: dropped.
        if source.mode == "I;16":
            expected = np.asarray(source, dtype=np.int32)[..., None].repeat(3, 2) // 257
        elif source.mode in ("RGBA", "RGBa"):
            expected = np.asarray(source, dtype=np.int16)[..., :3]
        else:
            expected = rgb(source)
        assert_close(decoded, expected, mean=tolerance)


def test_32_bit_gray_is_clipped_to_16_bits(tmp_path: Path) -> None:
    path = wide_int_tiff(tmp_path / "int32.tif")
    values = np.asarray(Image.open(path), dtype=np.int64)
    assert values.max() > 65535
    stored = np.asarray(reopened(embed_image(str(path), annotated_size=None)), dtype=np.int64)
    assert (stored == np.minimum(values, 65535)).all()


def test_multi_frame_files_give_their_first_frame(tmp_path: Path) -> None:
    first = scene(64, 48).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    second = Image.new("P", (64, 48), 3)
    second.putpalette(first.getpalette() or [])
    gif = save(first, tmp_path / "anim.gif", save_all=True, append_images=[second], duration=50)
    black = Image.new("L", (64, 48), 0)
    tiff = save(scene(64, 48, "L"), tmp_path / "pages.tif", save_all=True, append_images=[black])
    for path in (gif, tiff):
        assert getattr(Image.open(path), "n_frames", 1) == 2
        image = embed_image(str(path), annotated_size=(64, 48))
        assert image.format == "png"
        assert (decode(image) == rgb(Image.open(path))).all()  # Pillow opens frame 0


def test_transcoding_is_deterministic_and_keeps_no_metadata(tmp_path: Path) -> None:
    icc = b"\0" * 128  # not a valid profile: it only has to be copied or not
    tiff = save(scene(64, 48), tmp_path / "a.tif", dpi=(300, 300), exif=exif(1))
    turned = save(scene(64, 48), tmp_path / "b.jpg", exif=exif(6), icc_profile=icc, dpi=(72, 72))
    gray = save(scene(64, 48, "L"), tmp_path / "c.tif", dpi=(300, 300))
    for path in (tiff, turned, gray):
        first = embed_image(str(path), annotated_size=None)
        assert first.transcoded
        assert embed_image(str(path), annotated_size=None).data == first.data
        output = reopened(first)
        assert not output.getexif()
        assert not {"exif", "icc_profile", "dpi"} & set(output.info)


# --- EXIF orientation -----------------------------------------------------------------------


def test_jpeg_annotated_as_displayed_is_turned(tmp_path: Path) -> None:
    path = save(scene(64, 48), tmp_path / "phone.jpg", exif=exif(6), quality=95)
    image = embed_image(str(path), annotated_size=(48, 64), source=ANN)
    assert (image.format, image.width, image.height, image.transcoded) == ("jpeg", 48, 64, True)
    assert image.scale is None
    assert (
        image.note == f"{ANN}: image {path} has EXIF orientation 6: embedded as displayed (48x64)"
    )
    assert not reopened(image).getexif()
    assert_close(decode(image), rgb(ImageOps.exif_transpose(Image.open(path))), mean=2)


def test_jpeg_annotated_as_stored_is_embedded_as_it_is(tmp_path: Path) -> None:
    path = save(scene(64, 48), tmp_path / "old-labelimg.jpg", exif=exif(6))
    image = embed_image(str(path), annotated_size=(64, 48), source=ANN)
    assert (image.data, image.width, image.height) == (path.read_bytes(), 64, 48)
    assert (image.transcoded, image.note) == (False, None)
    assert_close(decode(image), rgb(Image.open(path)), mean=1.5)  # TF ignores EXIF


def test_orientation_the_size_cannot_tell_is_applied_and_noted(tmp_path: Path) -> None:
    path = save(scene(64, 48), tmp_path / "upside-down.jpg", exif=exif(3))
    image = embed_image(str(path), annotated_size=(64, 48), source=ANN)
    assert image.transcoded
    assert image.note == (
        f"{ANN}: image {path} has EXIF orientation 3: embedded as displayed (64x48)"
        " (assumed: the annotation's size cannot tell the frame)"
    )
    assert_close(decode(image), rgb(ImageOps.exif_transpose(Image.open(path))), mean=2)
    ignored = embed_image(str(path), annotated_size=(64, 48), exif="ignore")
    assert (ignored.data, ignored.note) == (path.read_bytes(), None)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_lands_in_the_annotated_frame(
    tmp_path: Path, orientation: int, suffix: str
) -> None:
    stored = scene(40, 24, "L")  # lossless but for WebP, transcoded to JPEG
    reference = save(stored, tmp_path / "reference.png", exif=exif(orientation))
    displayed = ImageOps.exif_transpose(Image.open(reference))
    lossless = {"lossless": True} if suffix == ".webp" else {}
    path = save(stored, tmp_path / f"image{suffix}", exif=exif(orientation), **lossless)

    def check(expected: Image.Image, annotated: tuple[int, int] | None, **options: Any) -> None:
        image = embed_image(str(path), annotated_size=annotated, **options)
        decoded = decode(image)
        if suffix == ".webp":
            assert_close(decoded, rgb(expected), mean=2)
        else:
            assert image.format == "png"
            assert (decoded[..., 0] == np.asarray(expected)).all()

    check(displayed, displayed.size)
    check(displayed, None)
    check(displayed, None, exif="apply")
    check(stored, None, exif="ignore")
    # 2-4 keep the size, so the stored size is also the displayed one: turned, as labelImg does.
    check(displayed if orientation in (2, 3, 4) else stored, stored.size)


def test_exif_ignore_compares_the_stored_size(tmp_path: Path) -> None:
    path = save(scene(64, 48), tmp_path / "phone.jpg", exif=exif(6))
    with pytest.raises(AnnotationError) as caught:
        embed_image(str(path), annotated_size=(48, 64), exif="ignore", source=ANN)
    assert str(caught.value) == (
        f"{ANN}: image {path} is 64x48 stored (48x64 displayed, EXIF orientation 6) but the "
        "annotation says 48x64 (size_policy 'warn' trusts the image and scales the boxes, "
        "'skip' leaves it out)"
    )


def test_a_rescaled_annotation_picks_the_frame_of_its_aspect_ratio(tmp_path: Path) -> None:
    path = save(scene(64, 48), tmp_path / "phone.jpg", exif=exif(8))
    image = embed_image(str(path), annotated_size=(24, 32), size_policy="warn", source=ANN)
    assert (image.width, image.height, image.scale) == (48, 64, (2.0, 2.0))
    assert image.note == (
        f"{ANN}: image {path} has EXIF orientation 8: embedded as displayed (48x64); "
        f"{ANN}: image {path} is 48x64 displayed (64x48 stored, EXIF orientation 8) but the "
        "annotation says 24x32; trusting the image: boxes scaled by 2, 2"
    )
    decode(image)


# --- sizes that disagree --------------------------------------------------------------------


def test_size_mismatch_fails_by_default(tmp_path: Path) -> None:
    path = draw_image(tmp_path / "a.png", 60, 40)
    with pytest.raises(AnnotationError) as caught:
        embed_image(str(path), annotated_size=(30, 20), source=ANN)
    assert type(caught.value) is AnnotationError
    assert caught.value.source == ANN
    assert str(caught.value) == (
        f"{ANN}: image {path} is 60x40 but the annotation says 30x20 (size_policy 'warn' "
        "trusts the image and scales the boxes, 'skip' leaves it out)"
    )


def test_size_mismatch_warns_and_scales_the_boxes(tmp_path: Path) -> None:
    path = draw_image(tmp_path / "a.png", 60, 40)
    image = embed_image(str(path), annotated_size=(40, 30), size_policy="warn", source=ANN)
    assert (image.data, image.width, image.height) == (path.read_bytes(), 60, 40)
    assert image.scale == (1.5, 40 / 30)
    assert image.note == (
        f"{ANN}: image {path} is 60x40 but the annotation says 40x30; "
        "trusting the image: boxes scaled by 1.5, 1.33333"
    )


def test_size_mismatch_skips(tmp_path: Path) -> None:
    path = draw_image(tmp_path / "a.tif", 60, 40)
    with pytest.raises(SkipImage) as caught:
        embed_image(str(path), annotated_size=(30, 20), size_policy="skip", source=ANN)
    assert isinstance(caught.value, AnnotationError)
    assert str(caught.value) == f"{ANN}: image {path} is 60x40 but the annotation says 30x20"


def test_unknown_sizes_are_not_checked_and_errors_name_the_image_alone(tmp_path: Path) -> None:
    path = draw_image(tmp_path / "a.png", 60, 40)
    for unknown in (None, (0, 0)):
        assert embed_image(str(path), annotated_size=unknown).scale is None
    with pytest.raises(AnnotationError) as caught:
        embed_image(str(path), annotated_size=(30, 20))
    assert str(caught.value).startswith(f"{path}: image is 60x40 but the annotation says 30x20")


# --- bad files and arguments ----------------------------------------------------------------


def truncated_jpeg(path: Path) -> Path:
    # The comment holds an end marker before the scan: only the one after the scan counts.
    data = save(scene(64, 48), path, comment=b"\xff\xd9").read_bytes()
    assert data.endswith(b"\xff\xd9")
    return write(path, data[:-2])


@pytest.mark.parametrize(
    ("name", "make", "problem"),
    [
        ("gone.jpg", lambda p: p, "not found"),
        (
            "notes.jpg",
            lambda p: write(p, "not an image"),
            "is not an image file Pillow can identify",
        ),
        (
            "half.jpg",
            lambda p: write(p, draw_image(p, 64, 48).read_bytes()[:300]),
            "is truncated: no JPEG end-of-image marker",
        ),
        ("no-eoi.jpg", truncated_jpeg, "is truncated: no JPEG end-of-image marker"),
        (
            "no-iend.png",
            lambda p: write(p, draw_image(p, 64, 48).read_bytes()[:-12]),
            "is truncated: no PNG IEND chunk",
        ),
        (
            "half.bmp",
            lambda p: write(p, save(scene(64, 48), p).read_bytes()[:4000]),
            "cannot be decoded: image file is truncated",
        ),
    ],
)
def test_unreadable_images_name_the_annotation_and_the_image(
    tmp_path: Path, name: str, make: Any, problem: str
) -> None:
    path = make(tmp_path / name)
    with pytest.raises(AnnotationError) as caught:
        embed_image(str(path), annotated_size=(64, 48), source=ANN)
    assert caught.value.source == ANN
    assert str(caught.value).startswith(f"{ANN}: image {path} {problem}")


@pytest.mark.parametrize(
    "options",
    [
        {"jpeg_quality": 0},
        {"jpeg_quality": 101},
        {"png_level": -1},
        {"png_level": 10},
        {"size_policy": "Warn"},
        {"exif": "yes"},
    ],
)
def test_bad_options_are_rejected(tmp_path: Path, options: dict[str, Any]) -> None:
    path = draw_image(tmp_path / "a.png", 8, 8)
    with pytest.raises(ValueError):
        embed_image(str(path), annotated_size=None, **options)


@pytest.mark.parametrize("policy", ["fail", "warn", "skip"])
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_header_fast_path_answers_as_pillow_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, policy: str
) -> None:
    path = str(save(scene(64, 48), tmp_path / f"a{suffix}"))

    def outcome() -> list[EmbeddedImage | str]:
        results: list[EmbeddedImage | str] = []
        for size in [(64, 48), (32, 24), None, (0, 0)]:
            try:
                results.append(
                    embed_image(path, annotated_size=size, size_policy=policy, source="a.xml")  # type: ignore[arg-type]
                )
            except AnnotationError as error:
                results.append(f"{type(error).__name__}: {error}")
        return results

    fast = outcome()
    monkeypatch.setattr("annoconv.io.embed.plain_image_size", lambda data: None)
    assert fast == outcome()
    assert isinstance(fast[0], EmbeddedImage) and not fast[0].transcoded
