"""The preview page in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by selenium): images and boxes counted from the DOM, every box's on-screen rectangle
against its coordinates scaled to the image as rendered, the class filter, the enlarged view,
and a screenshot's pixels: class colours on the box outlines, each box's object inside it.

Without a browser these tests are skipped, saying how to install one; under CI (CI=true)
they fail instead: `.ci/run` installs the browser.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from preview_data import GREEN, Expected, close, make_dataset

import annoconv
from annoconv.preview.colors import class_colors

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = (
    "apt-get install chromium chromium-driver (Debian's packages: /usr/bin/chromium and "
    "/usr/bin/chromedriver) and pip install -e '.[test]' (selenium)"
)
# Flags for a closed network: no background connections, no sandbox (root in a container).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1400,1000",
)
#: On-screen rectangles match the coordinates within this many CSS pixels.
PIXEL = 1.0


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return f"{path} is missing"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        message = f"the browser tests need Chromium: {missing}; install with: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="annoconv-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    # The driver is given: selenium-manager never runs (it would try to download one).
    service = Service(executable_path=shutil.which("chromedriver") or CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Expected]]:
    folder = tmp_path_factory.mktemp("browser")
    expected = make_dataset(folder / "data")
    out = folder / "preview.html"
    annoconv.preview(str(folder / "data"), str(out))
    return out, expected


def rect(driver: Any, element: Any) -> dict[str, float]:
    return driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", element)  # type: ignore[no-any-return]


def displayed(driver: Any, element: Any) -> bool:
    return driver.execute_script("return getComputedStyle(arguments[0]).display", element) != "none"  # type: ignore[no-any-return]


def check_boxes(driver: Any, frame: Any, want: Expected) -> None:
    """Each box's rectangle is its coordinates scaled to the image as rendered (1 px)."""
    image = rect(driver, frame)
    assert image["width"] / image["height"] == pytest.approx(want.width / want.height, abs=0.02)
    boxes = frame.find_elements("css selector", ".box")
    assert len(boxes) == len(want.boxes)
    sx, sy = image["width"] / want.width, image["height"] / want.height
    for element, (label, x0, y0, x1, y1) in zip(boxes, want.boxes, strict=True):
        assert element.get_attribute("data-class") == label
        box = rect(driver, element)
        assert box["left"] == pytest.approx(image["left"] + x0 * sx, abs=PIXEL)
        assert box["top"] == pytest.approx(image["top"] + y0 * sy, abs=PIXEL)
        assert box["right"] == pytest.approx(image["left"] + x1 * sx, abs=PIXEL)
        assert box["bottom"] == pytest.approx(image["top"] + y1 * sy, abs=PIXEL)


def open_page(driver: Any, path: Path) -> None:
    driver.get(path.as_uri())
    assert driver.execute_script("return window.devicePixelRatio") == 1


def test_dom_has_every_image_and_box_where_its_coordinates_say(
    browser: Any, page: tuple[Path, dict[str, Expected]]
) -> None:
    path, expected = page
    open_page(browser, path)
    cards = browser.find_elements("css selector", ".grid .card")
    assert sorted(card.get_attribute("data-key") for card in cards) == sorted(expected)
    total = sum(len(item.boxes) for item in expected.values())
    assert len(browser.find_elements("css selector", ".grid .box")) == total
    for card in cards:
        want = expected[card.get_attribute("data-key")]
        frame = card.find_element("css selector", ".frame")
        picture = frame.find_element("css selector", "img")
        assert browser.execute_script("return arguments[0].complete", picture)
        assert rect(browser, picture) == rect(browser, frame)
        check_boxes(browser, frame, want)
    legend = browser.find_elements("css selector", ".legend input[data-class]")
    assert sorted(item.get_attribute("data-class") for item in legend) == ["cup", "figure", "phone"]


def test_class_filter_hides_the_other_classes(
    browser: Any, page: tuple[Path, dict[str, Expected]]
) -> None:
    path, _expected = page
    open_page(browser, path)
    boxes = browser.find_elements("css selector", ".grid .box")
    browser.find_element("css selector", '.legend button.only[data-class="cup"]').click()
    shown = {(box.get_attribute("data-class"), displayed(browser, box)) for box in boxes}
    assert shown == {("cup", True), ("phone", False), ("figure", False)}
    browser.find_element("css selector", '.legend input[data-class="cup"]').click()
    assert not any(displayed(browser, box) for box in boxes)
    browser.find_element("id", "hide-empty").click()
    cards = browser.find_elements("css selector", ".grid .card")
    assert not any(card.is_displayed() for card in cards)
    browser.find_element("id", "hide-empty").click()
    browser.find_element("id", "all-classes").click()
    assert all(displayed(browser, box) for box in boxes)
    assert all(card.is_displayed() for card in cards)


def test_screenshot_shows_class_colours_on_boxes_around_their_objects(
    browser: Any, page: tuple[Path, dict[str, Expected]]
) -> None:
    path, expected = page
    open_page(browser, path)
    shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    for card in browser.find_elements("css selector", ".grid .card"):
        want = expected[card.get_attribute("data-key")]
        frame = card.find_element("css selector", ".frame")
        boxes = frame.find_elements("css selector", ".box")
        for element, box, color in zip(boxes, want.boxes, want.colors, strict=True):
            outer = rect(browser, element)
            assert outer["bottom"] <= shot.height and outer["right"] <= shot.width
            outline = class_colors(["cup", "figure", "phone"])[box[0]]
            for point in _outline_points(outer):
                assert close(shot.getpixel(point), outline, 12), (want.key, box, point)  # type: ignore[arg-type]
            middle = (
                int((outer["left"] + outer["right"]) / 2),
                int(outer["top"] + outer["bottom"]) // 2,
            )
            assert close(shot.getpixel(middle), color), (want.key, box)  # type: ignore[arg-type]
        if want.key == "alpha.xml":  # transparent pixels as TensorFlow sees them
            image = rect(browser, frame)
            corner = (int(image["right"]) - 4, int(image["bottom"]) - 4)
            assert close(shot.getpixel(corner), GREEN, 12)  # type: ignore[arg-type]


def _outline_points(box: dict[str, float]) -> list[tuple[int, int]]:
    """Points on the middle of the 2 px outline: left, right and bottom edges' middles, and
    the top edge at three quarters (its label may cover the top left)."""
    left, right, top, bottom = box["left"], box["right"], box["top"], box["bottom"]
    middle_x, middle_y = int((left + right) / 2), int((top + bottom) / 2)
    return [
        (int(left + 1), middle_y),
        (int(right - 1), middle_y),
        (middle_x, int(bottom - 1)),
        (int(left + (right - left) * 0.75), int(top + 1)),
    ]


def test_enlarged_view_draws_the_boxes_at_its_size(
    browser: Any, page: tuple[Path, dict[str, Expected]]
) -> None:
    path, expected = page
    open_page(browser, path)
    card = browser.find_element("css selector", '.grid .card[data-key="phone.xml"]')
    small = rect(browser, card.find_element("css selector", ".frame"))
    card.find_element("css selector", ".frame").click()
    viewer = browser.find_element("id", "viewer")
    assert viewer.is_displayed()
    frame = viewer.find_element("css selector", ".viewer-stage .frame")
    large = rect(browser, frame)
    assert large["height"] > 2 * small["height"]
    check_boxes(browser, frame, expected["phone.xml"])
    rows = viewer.find_elements("css selector", "#viewer-boxes tr")
    assert [row.text.split() for row in rows] == [
        ["cup", "20", "90", "70", "140"],
        ["phone", "60", "10", "110", "50"],
    ]
    browser.find_element("tag name", "body").send_keys("\ue00c")  # Escape
    assert not viewer.is_displayed()
