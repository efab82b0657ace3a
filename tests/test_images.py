"""Image headers and the image lookup order of ImageLocator."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
from factories import draw_image, write
from PIL import Image

from annoconv.errors import AnnotationError
from annoconv.io.images import IMAGE_SUFFIXES, ImageInfo, ImageLocator, read_image_info

# --- read_image_info ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "options", "expected"),
    [
        ("rgb.jpg", "RGB", {}, ImageInfo(64, 48, 3, "JPEG")),
        ("gray.png", "L", {}, ImageInfo(64, 48, 1, "PNG")),
        ("alpha.png", "RGBA", {}, ImageInfo(64, 48, 4, "PNG")),
        ("gray_alpha.png", "LA", {}, ImageInfo(64, 48, 2, "PNG")),
        ("palette.gif", "P", {}, ImageInfo(64, 48, 3, "GIF")),
        ("rgb.bmp", "RGB", {}, ImageInfo(64, 48, 3, "BMP")),
        ("rgb.webp", "RGB", {}, ImageInfo(64, 48, 3, "WEBP")),
        ("cmyk.jpg", "CMYK", {}, ImageInfo(64, 48, 4, "JPEG")),
        ("ycbcr.jpg", "YCbCr", {}, ImageInfo(64, 48, 3, "JPEG")),
        ("int16.tif", "I;16", {}, ImageInfo(64, 48, 1, "TIFF")),
        ("float.tif", "F", {}, ImageInfo(64, 48, 1, "TIFF")),
        ("bilevel.tif", "1", {"compression": "group4"}, ImageInfo(64, 48, 1, "TIFF")),
    ],
)
def test_read_image_info_modes(
    tmp_path: Path, name: str, mode: str, options: dict[str, str], expected: ImageInfo
) -> None:
    image = draw_image(tmp_path / name, 64, 48, mode, **options)  # type: ignore[arg-type]
    assert read_image_info(str(image)) == expected


def test_patent_drawing_g4_tiff_header(tmp_path: Path) -> None:
    image = draw_image(tmp_path / "280.TIF", 2560, 3300, "1", "TIFF", compression="group4")
    with Image.open(image) as opened:
        assert opened.info["compression"] == "group4"
    assert read_image_info(str(image)) == ImageInfo(2560, 3300, 1, "TIFF", 1)


@pytest.mark.parametrize("name", ["phone.jpg", "phone.png", "phone.webp", "phone.tif"])
@pytest.mark.parametrize(("orientation", "displayed"), [(6, (30, 40)), (3, (40, 30))])
def test_the_size_is_as_displayed_and_the_orientation_reported(
    tmp_path: Path, name: str, orientation: int, displayed: tuple[int, int]
) -> None:
    image = draw_image(tmp_path / name, 40, 30, exif_orientation=orientation)
    info = read_image_info(str(image))
    assert (info.width, info.height, info.exif_orientation) == (*displayed, orientation)
    assert info.stored_size == (40, 30)


def test_reads_only_the_header(tmp_path: Path) -> None:
    full = draw_image(tmp_path / "big.jpg", 1200, 900).read_bytes()
    cut = write(tmp_path / "cut.jpg", full[:2048])
    with Image.open(cut) as image, pytest.raises(OSError):
        image.load()
    assert read_image_info(str(cut)) == ImageInfo(1200, 900, 3, "JPEG")


def test_missing_image_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(AnnotationError) as caught:
        read_image_info(missing)
    assert str(caught.value) == f"{missing}: image file not found"


def test_not_an_image_names_it(tmp_path: Path) -> None:
    fake = str(write(tmp_path / "fake.jpg", "not a JPEG at all"))
    with pytest.raises(AnnotationError) as caught:
        read_image_info(fake)
    assert str(caught.value) == f"{fake}: not an image file Pillow can identify"


def test_read_image_info_over_fsspec(tmp_path: Path) -> None:
    data = draw_image(tmp_path / "a.png", 33, 22, "L").read_bytes()
    uri = f"memory://{uuid.uuid4().hex}/a.png"
    fsspec.filesystem("memory").pipe(uri, data)
    assert read_image_info(uri) == ImageInfo(33, 22, 1, "PNG")


def test_image_suffixes() -> None:
    assert IMAGE_SUFFIXES == (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")


# --- ImageLocator ------------------------------------------------------------------------------


def touch(root: Path, *names: str) -> None:
    for name in names:
        write(root / name, b"")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "ann").mkdir()
    (tmp_path / "images").mkdir()
    return tmp_path


def locate(
    tree: Path,
    xml: str,
    filename: str,
    path: str | None = None,
    images: str | None = "images",
) -> str | None:
    locator = ImageLocator(str(tree / images) if images else None, str(tree / "ann"))
    return locator.find(str(tree / "ann" / xml), filename, path)


def test_step1_beside_the_annotation_wins(tree: Path) -> None:
    touch(tree, "ann/1/280.jpg", "images/1/280.jpg", "images/x/280.jpg")
    assert locate(tree, "1/280.xml", "280.jpg") == str(tree / "ann/1/280.jpg")


def test_step2_mirrored_folder_under_images_beats_search_by_name(tree: Path) -> None:
    touch(tree, "images/1/280.jpg", "images/2/280.jpg")
    assert locate(tree, "1/280.xml", "280.jpg") == str(tree / "images/1/280.jpg")
    assert locate(tree, "2/280.xml", "280.jpg") == str(tree / "images/2/280.jpg")


def test_step2_flat_annotations_and_flat_images(tree: Path) -> None:
    touch(tree, "images/280.jpg", "images/sub/280.jpg")
    assert locate(tree, "280.xml", "280.jpg") == str(tree / "images/280.jpg")


def test_step3_by_name_anywhere_under_images(tree: Path) -> None:
    touch(tree, "images/2024/week1/280.jpg")
    assert locate(tree, "1/280.xml", "280.jpg") == str(tree / "images/2024/week1/280.jpg")


def test_step3_matches_names_case_insensitively(tree: Path) -> None:
    touch(tree, "images/deep/IMG_0001.jpg")
    assert locate(tree, "a.xml", "img_0001.JPG") == str(tree / "images/deep/IMG_0001.jpg")


def test_step3_several_files_with_that_name_is_ambiguous(tree: Path) -> None:
    touch(tree, "images/a/280.jpg", "images/b/280.jpg")
    with pytest.raises(AnnotationError) as caught:
        locate(tree, "1/280.xml", "280.jpg")
    images = tree / "images"
    assert str(caught.value) == (
        f"{tree / 'ann/1/280.xml'}: image '280.jpg' is ambiguous: 2 files under {images} "
        "match it (a/280.jpg, b/280.jpg); keep the image beside its annotation, mirror "
        "the annotation folders under the images folder, or record the image's folders in <path>"
    )


def test_step3_subfolders_in_filename_disambiguate(tree: Path) -> None:
    touch(tree, "images/batch/1/280.jpg", "images/batch/2/280.jpg")
    found = locate(tree, "labels.csv", "2/280.jpg")
    assert found == str(tree / "images/batch/2/280.jpg")


def test_step4_recorded_path(tree: Path) -> None:
    elsewhere = tree / "elsewhere" / "scan 280.png"
    touch(tree, "elsewhere/scan 280.png")
    assert locate(tree, "1/280.xml", "280.png", str(elsewhere)) == str(elsewhere)


def test_step3_beats_recorded_path(tree: Path) -> None:
    touch(tree, "images/x/280.png", "elsewhere/280.png")
    found = locate(tree, "1/280.xml", "280.png", str(tree / "elsewhere/280.png"))
    assert found == str(tree / "images/x/280.png")


def test_step4_relative_path_is_relative_to_the_annotation(tree: Path) -> None:
    touch(tree, "pics/280.jpg")
    found = locate(tree, "280.xml", "other.jpg", "../pics/280.jpg", images=None)
    assert found == str(tree / "ann" / "../pics/280.jpg")


def test_folders_are_not_images(tree: Path) -> None:
    (tree / "ann" / "280.jpg").mkdir()
    assert locate(tree, "280.xml", "280.jpg", str(tree)) is None


def test_windows_recorded_path_is_not_tried_but_its_name_is(tree: Path) -> None:
    touch(tree, "ann/280.jpg")
    assert locate(tree, "280.xml", "C:\\Users\\me\\imgs\\280.jpg", "C:\\Users\\me\\280.jpg") == (
        str(tree / "ann/280.jpg")
    )
    assert locate(tree, "280.xml", "x.jpg", "C:\\Users\\me\\imgs\\280.jpg") is None


@pytest.mark.parametrize("stored", ["280.tif", "280.TIF", "280.tiff", "280.png"])
def test_step5_same_stem_other_extension_beside(tree: Path, stored: str) -> None:
    touch(tree, f"ann/1/{stored}", "ann/1/280.xml", "ann/1/281.tif")
    assert locate(tree, "1/280.xml", "280.jpg") == str(tree / "ann/1" / stored)


def test_step5_extension_less_filename(tree: Path) -> None:
    touch(tree, "ann/280.jpg", "ann/2800.jpg")
    assert locate(tree, "280.xml", "280") == str(tree / "ann/280.jpg")


def test_step5_stem_under_mirrored_folder_and_by_stem_anywhere(tree: Path) -> None:
    touch(tree, "images/1/280.TIF", "images/deep/281.tiff")
    assert locate(tree, "1/280.xml", "280.jpg") == str(tree / "images/1/280.TIF")
    assert locate(tree, "7/281.xml", "281.jpg") == str(tree / "images/deep/281.tiff")


def test_step5_stem_in_recorded_folder(tree: Path) -> None:
    touch(tree, "elsewhere/280.bmp")
    found = locate(tree, "1/280.xml", "280.jpg", str(tree / "elsewhere/280.jpg"))
    assert found == str(tree / "elsewhere/280.bmp")


def test_same_stem_beside_beats_exact_name_elsewhere(tree: Path) -> None:
    """USPTO: `1/280.xml` names `280.jpg`, its pixels are `1/280.tif`; another patent's
    `2/280.jpg` must not be taken for it."""
    touch(tree, "ann/1/280.tif", "images/2/280.jpg")
    assert locate(tree, "1/280.xml", "280.jpg") == str(tree / "ann/1/280.tif")
    touch(tree, "images/3/281.tif", "images/4/281.jpg")
    assert locate(tree, "3/281.xml", "281.jpg") == str(tree / "images/3/281.tif")


def test_mirrored_folders_are_not_searched_elsewhere(tree: Path) -> None:
    """When the images mirror the annotation folders, an image missing from its mirror is
    missing: a same-named file of another folder is not a stand-in."""
    touch(tree, "images/1/other.jpg", "images/2/280.jpg")
    assert locate(tree, "1/280.xml", "280.jpg") is None
    assert locate(tree, "5/280.xml", "280.jpg") == str(tree / "images/2/280.jpg")


def test_step5_several_stems_in_one_folder_is_ambiguous(tree: Path) -> None:
    touch(tree, "ann/280.png", "ann/280.tif")
    with pytest.raises(AnnotationError) as caught:
        locate(tree, "280.xml", "280")
    assert str(caught.value) == (
        f"{tree / 'ann/280.xml'}: image '280' is ambiguous: 2 files in {tree / 'ann'} match it "
        "(280.png, 280.tif); name the image with its extension, or keep one image of that "
        "stem there"
    )


def test_step5_stem_ambiguity_under_images(tree: Path) -> None:
    touch(tree, "images/a/280.tif", "images/b/280.png")
    with pytest.raises(AnnotationError, match=r"2 files under .* \(a/280.tif, b/280.png\)"):
        locate(tree, "280.xml", "280.jpg")


def test_non_image_files_are_not_matched_by_stem(tree: Path) -> None:
    touch(tree, "ann/280.txt", "images/280.xml", "images/280.json")
    assert locate(tree, "280.xml", "280.jpg") is None


def test_nothing_found(tree: Path) -> None:
    assert locate(tree, "1/280.xml", "280.jpg") is None
    assert locate(tree, "1/280.xml", "280.jpg", images=None) is None
    assert locate(tree, "1/280.xml", "") is None


def test_missing_images_folder_finds_nothing(tree: Path) -> None:
    assert locate(tree, "280.xml", "280.jpg", images="no-such-folder") is None


def test_images_tree_is_indexed_once(tree: Path) -> None:
    touch(tree, "images/x/1.jpg")
    locator = ImageLocator(str(tree / "images"), str(tree / "ann"))
    xml = str(tree / "ann/a.xml")
    assert locator.find(xml, "1.jpg") == str(tree / "images/x/1.jpg")
    touch(tree, "images/y/2.jpg")
    assert locator.find(xml, "2.jpg") is None


def test_locator_over_fsspec_urls() -> None:
    fs = fsspec.filesystem("memory")
    base = f"memory://{uuid.uuid4().hex}"
    for name in ("ann/1/280.xml", "images/1/280.TIF", "images/2/9.png"):
        fs.pipe(f"{base}/{name}", b"x")
    locator = ImageLocator(f"{base}/images", f"{base}/ann")
    assert locator.find(f"{base}/ann/1/280.xml", "280.jpg") == f"{base}/images/1/280.TIF"
    assert locator.find(f"{base}/ann/5/9.xml", "9.png") == f"{base}/images/2/9.png"
    assert locator.find(f"{base}/ann/1/7.xml", "7.png") is None
