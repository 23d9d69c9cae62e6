"""The playground (GET /ui) in a real browser: headless Chromium (Debian's, driven by
Selenium through Debian's chromedriver) against a real `bentoml serve` that has API keys
and a custom classifier trained here by the real CLI.

Each panel's main flow runs with a real input, and the test asserts on what the page shows
(labels, drawn boxes, a timeline, a translation, an audio element with a duration,
titles), checked against the API's own answer to the same request. Also: the API key
prompt, an API error shown as the API states it, keyboard use, colour contrast, a 390 px
wide screen, and that the page reaches nothing but this server. One full-page screenshot
per panel lands in the test's temporary folder (printed at the end of the module).
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import browser, fashion_mnist
from .conftest import TEST_MAX_REQUEST_BYTES, TEST_MAX_VIDEO_BYTES, TEST_MAX_VIDEO_DURATION_S
from .images import CAT_LABELS, composite, encode, photo
from .servers import (
    REPO,
    bentoml_home_beside_the_project,
    bentoml_serve,
    free_port,
    running_server,
    service_env,
)
from .videos import Appearance, scripted_video

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing())),
]

KEY = "playground-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CUSTOM = "fashion"  # the custom classifier trained for the model picker
CUSTOM_LABELS = fashion_mnist.LABELS[:3]
TRANSLATE_TEXT = "I like to read books in the garden."
SPEECH_TEXT = "Good morning. The playground speaks this sentence."
# failed loads the tests cause on purpose: the first visit without a key, a wrong key, a non-image
EXPECTED_FAILURES = re.compile(r"Failed to load resource: the server responded with a status of (401|415)")


# ---------------------------------------------------------------------------- fixtures


def train_custom_classifier(home: Path, data: Path) -> None:
    """`python -m models.finetune` in head mode: a few seconds on a CPU."""
    env = service_env(BENTOML_HOME=str(home), PAIS_CACHE_DIR=str(home / "cache"))
    result = subprocess.run(
        [sys.executable, "-m", "models.finetune", "--data", str(data), "--name", CUSTOM, "--mode", "head",
         "--epochs", "10", "--no-progress", "--restart", "--min-per-class", "10"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BentoML home with the project's models (linked) and, where Debian's Fashion-MNIST
    is installed, a custom classifier of three of its classes."""
    home = bentoml_home_beside_the_project(tmp_path_factory.mktemp("bentoml-home"))
    if fashion_mnist.available():
        data = fashion_mnist.write_subset(tmp_path_factory.mktemp("fashion"), per_class=10, classes=3)
        train_custom_classifier(home, data)
    return home


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[str]:
    """`bentoml serve` with an API key required, the custom classifier, small limits."""
    port = free_port()
    env = service_env(
        BENTOML_HOME=str(home),
        PAIS_API_KEYS=KEY,
        PAIS_MAX_REQUEST_BYTES=str(TEST_MAX_REQUEST_BYTES),
        PAIS_VIDEO_MAX_BYTES=str(TEST_MAX_VIDEO_BYTES),
        PAIS_VIDEO_MAX_DURATION_S=str(TEST_MAX_VIDEO_DURATION_S),
    )
    with running_server(bentoml_serve("service.gateway:PAIS", port), port, env) as url:
        yield url


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real files a user would pick: photos, a short video, a Fashion-MNIST image, a text file."""
    folder = tmp_path_factory.mktemp("inputs")
    files = {
        "cat": folder / "chelsea.jpg",
        "scene": folder / "cat-coffee-astronaut.jpg",
        "notes": folder / "notes.txt",
    }
    files["cat"].write_bytes(encode(photo("chelsea"), "JPEG", quality=90))
    scene, _ = composite(["chelsea", "coffee", "astronaut"])
    files["scene"].write_bytes(encode(scene, "JPEG", quality=90))
    files["notes"].write_text("Shopping list: milk, bread.\n")
    files["video"] = scripted_video(
        folder / "cat-then-person.webm",
        [
            Appearance("chelsea", 0.0, 3.0, (20, 60, 280, 280)),
            Appearance("astronaut", 2.0, 5.0, (340, 60, 280, 280)),
        ],
        duration_s=6.0,
        fps=5,
    )
    if fashion_mnist.available():
        subset = fashion_mnist.write_subset(folder / "fashion", per_class=1, classes=3, offset=500)
        files["trouser"] = next((subset / "trouser").iterdir())
    return files


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("playground-screenshots")
    yield folder
    print(f"\nplayground screenshots: {folder}")


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with browser.chromium(1280, 1000) as driver:
        yield driver


@pytest.fixture
def page(driver: Any, server: str) -> Iterator[Any]:
    """The browser on /ui with the API key in this tab's session; afterwards: the page sent
    requests to this server only, and logged no error but those a test caused on purpose."""
    driver.set_window_size(1280, 1000)
    driver.get(server + "/ui")
    driver.execute_script("sessionStorage.setItem('pais-api-key', arguments[0])", KEY)
    driver.refresh()
    wait(driver, lambda d: d.find_element("id", "server-status").text.startswith("Connected"))
    yield driver
    assert_only_this_server(driver, server)


# ---------------------------------------------------------------------------- helpers


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 90) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def by_id(driver: Any, element_id: str) -> Any:
    return driver.find_element("id", element_id)


def all_css(driver: Any, selector: str) -> list[Any]:
    return driver.find_elements("css selector", selector)


def open_tab(driver: Any, task: str) -> Any:
    by_id(driver, f"tab-{task}").click()
    panel = by_id(driver, f"panel-{task}")
    assert panel.is_displayed()
    return panel


def submit(driver: Any, task: str) -> None:
    by_id(driver, f"{task}-form").find_element("css selector", "button[type=submit]").click()


def idle(driver: Any, result_id: str) -> Callable[[Any], bool]:
    """The panel has an answer on screen and no request in flight."""

    def done(d: Any) -> bool:
        result = by_id(d, result_id)
        return result.is_displayed() and result.get_attribute("aria-busy") is None

    return done


def drawn_with(driver: Any, attribute: str, value: str) -> Callable[[Any], bool]:
    """The detection drawing answers a request made with `attribute` = value."""

    def done(d: Any) -> bool:
        return by_id(d, "detect-svg").get_attribute(attribute) == value and idle(d, "detect-result")(d)

    return done


def screenshot(driver: Any, path: Path) -> Path:
    """The whole page, not just the window (Chromium's DevTools capture)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def api(server: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, server + path, headers=AUTH, timeout=120, **kwargs)


def assert_readable(driver: Any) -> None:
    """WCAG AA contrast of every text on screen."""
    assert browser.low_contrast_text(driver, driver.find_element("tag name", "body")) == []


def assert_only_this_server(driver: Any, server: str) -> None:
    # network requests only (the browser's own chrome:// pages are not fetched from anywhere)
    strays = [
        r["url"]
        for r in browser.sent_requests(driver)
        if r["url"].startswith(("http:", "https:", "ws:", "wss:")) and not r["url"].startswith(server + "/")
    ]
    assert strays == [], "the page reached beyond its server"
    errors = [m for m in browser.console_errors(driver) if not EXPECTED_FAILURES.search(m)]
    assert errors == [], errors


# ---------------------------------------------------------------------------- the files


def test_page_and_assets_are_served_without_a_key_with_types_and_caching(server: str) -> None:
    page = httpx.get(server + "/ui")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache" and page.headers["x-content-type-options"] == "nosniff"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
    assert httpx.get(server + "/ui", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
    assert httpx.head(server + "/ui").status_code == 200
    moved = httpx.get(server + "/ui/")
    assert moved.status_code == 308 and moved.headers["location"] == "../ui"
    assets = dict(re.findall(r'"ui/(app\.js|style\.css)\?v=([0-9a-f]{12})"', page.text))
    assert set(assets) == {"app.js", "style.css"}
    for name, media in (("app.js", "text/javascript"), ("style.css", "text/css")):
        versioned = httpx.get(f"{server}/ui/{name}?v={assets[name]}", headers={"Accept-Encoding": "gzip"})
        assert versioned.status_code == 200 and versioned.headers["content-type"].startswith(media)
        assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert versioned.headers["content-encoding"] == "gzip"
        plain = httpx.get(f"{server}/ui/{name}", headers={"Accept-Encoding": "identity"})
        assert plain.headers["cache-control"] == "no-cache" and "content-encoding" not in plain.headers
        assert plain.content == versioned.content  # httpx decoded the gzipped one
        # nothing from elsewhere: the only absolute URL is SVG's namespace name
        assert set(re.findall(r"https?://[^\s\"')]+", plain.text)) <= {"http://www.w3.org/2000/svg"}
    assert set(re.findall(r"https?://[^\s\"')]+", page.text)) <= {"http://www.w3.org/2000/svg"}
    assert httpx.get(server + "/models").status_code == 401  # the API itself still needs the key
    assert httpx.get(server + "/ui/other.js").status_code == 401  # only the page's own files are open


# ---------------------------------------------------------------------------- API key


def test_the_key_is_asked_once_kept_for_the_tab_and_sent(driver: Any, server: str, shots: Path) -> None:
    driver.set_window_size(1280, 1000)
    driver.get(server + "/ui")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    wait(driver, lambda d: by_id(d, "key-box").is_displayed())
    assert driver.switch_to.active_element == by_id(driver, "key-input")  # focus is where to type
    assert "needs an API key" in by_id(driver, "server-status").text
    screenshot(driver, shots / "key-prompt.png")

    by_id(driver, "key-input").send_keys("not-the-key\n")
    wait(driver, lambda d: by_id(d, "key-error").is_displayed())
    refused = httpx.get(server + "/models", headers={"Authorization": "Bearer not-the-key"})
    assert refused.status_code == 401 and by_id(driver, "key-error").text == refused.json()["error"]

    browser.sent_requests(driver)  # from here on: the requests made with the right key
    by_id(driver, "key-input").send_keys(KEY + "\n")
    wait(driver, lambda d: by_id(d, "server-status").text.startswith("Connected"))
    assert not by_id(driver, "key-box").is_displayed() and by_id(driver, "key-held").is_displayed()
    assert driver.execute_script("return sessionStorage.getItem('pais-api-key')") == KEY
    assert driver.execute_script("return localStorage.length") == 0  # never kept beyond the tab
    sent = [r for r in browser.sent_requests(driver) if r["url"].startswith(server + "/models")]
    assert sent and all(r["headers"].get("authorization") == f"Bearer {KEY}" for r in sent)

    driver.refresh()  # asked once: a reload in the same tab keeps it
    wait(driver, lambda d: by_id(d, "server-status").text.startswith("Connected"))
    assert not by_id(driver, "key-box").is_displayed()

    by_id(driver, "key-forget").click()
    wait(driver, lambda d: by_id(d, "key-box").is_displayed())
    assert driver.execute_script("return sessionStorage.getItem('pais-api-key')") is None
    assert_only_this_server(driver, server)


# ---------------------------------------------------------------------------- panels


def test_classify_shows_the_top_labels_of_a_photo(page: Any, server: str, inputs: dict, shots: Path) -> None:
    open_tab(page, "classify")
    by_id(page, "classify-file").send_keys(str(inputs["cat"]))  # picking a file runs it
    wait(page, idle(page, "classify-result"))
    shown = [
        (item.find_element("class name", "name").text, item.find_element("class name", "score").text)
        for item in all_css(page, "#classify-labels li")
    ]
    files = [("images", ("chelsea.jpg", inputs["cat"].read_bytes(), "image/jpeg"))]
    (answer,) = api(server, "POST", "/classify", files=files, data={"top_k": "5"}).json()
    assert [label for label, _ in shown] == [p["label"] for p in answer["predictions"]]
    assert shown[0][0] in CAT_LABELS and shown[0][1].endswith("%")
    preview = by_id(page, "classify-preview")
    assert page.execute_script("return arguments[0].naturalWidth", preview) == photo("chelsea").shape[1]
    assert_readable(page)
    screenshot(page, shots / "classify.png")


def test_classify_model_picker_lists_and_uses_the_custom_classifier(page: Any, inputs: dict) -> None:
    from selenium.webdriver.support.ui import Select

    if "trouser" not in inputs:
        pytest.skip("Debian's dataset-fashion-mnist is not installed: no custom classifier to pick")
    open_tab(page, "classify")
    picker = Select(by_id(page, "classify-model"))
    options = {o.get_attribute("value"): o.text for o in picker.options}
    assert (
        options[""].startswith("efficientnet-lite0")
        and picker.first_selected_option.get_attribute("value") == ""
    )
    assert set(options) == {"", CUSTOM} and "3 labels" in options[CUSTOM]
    picker.select_by_value(CUSTOM)
    info = by_id(page, "classify-model-info").text
    assert all(label in info for label in CUSTOM_LABELS) and "validation accuracy" in info
    by_id(page, "classify-file").send_keys(str(inputs["trouser"]))
    wait(page, idle(page, "classify-result"))
    labels = [e.text for e in all_css(page, "#classify-labels .name")]
    assert labels and set(labels) <= set(CUSTOM_LABELS)
    assert by_id(page, "classify-answered-by").text == f"by {CUSTOM}"


def test_a_non_image_shows_the_apis_message(page: Any, server: str, inputs: dict, shots: Path) -> None:
    open_tab(page, "classify")
    by_id(page, "classify-file").send_keys(str(inputs["notes"]))
    wait(page, lambda d: by_id(d, "classify-error").is_displayed())
    files = [("images", ("notes.txt", inputs["notes"].read_bytes(), "text/plain"))]
    refused = api(server, "POST", "/classify", files=files)
    assert refused.status_code in (400, 415)
    assert (
        by_id(page, "classify-error").find_element("class name", "api-error").text == refused.json()["error"]
    )
    assert f"Error {refused.status_code}" in by_id(page, "classify-error").text
    assert not by_id(page, "classify-result").is_displayed()  # no stale answer beside the error
    assert_readable(page)
    screenshot(page, shots / "classify-error.png")


def detections_shown(driver: Any) -> list[str]:
    return [g.get_attribute("data-label") for g in all_css(driver, "#detect-svg g.detection")]


def test_detect_draws_labelled_boxes_with_threshold_and_class_filter(
    page: Any, server: str, inputs: dict, shots: Path
) -> None:
    from selenium.webdriver.common.keys import Keys

    open_tab(page, "detect")
    by_id(page, "detect-file").send_keys(str(inputs["scene"]))
    wait(page, idle(page, "detect-result"))
    scene = inputs["scene"].read_bytes()

    def answer(**form: str) -> dict:
        files = [("images", ("scene.jpg", scene, "image/jpeg"))]
        return api(server, "POST", "/detect", files=files, data=form).json()[0]

    first = answer(score_threshold="0.25")
    assert sorted(detections_shown(page)) == sorted(d["label"] for d in first["detections"])
    assert {"cat", "cup", "person"} <= set(detections_shown(page))
    svg = by_id(page, "detect-svg")
    # the drawing is the image's size: its coordinates are the boxes' pixels
    assert svg.get_dom_attribute("viewBox") == f"0 0 {first['width']} {first['height']}"
    height, width = photo_size = (first["height"], first["width"])
    assert photo_size == tuple(composite(["chelsea", "coffee", "astronaut"])[0].shape[:2])
    image = svg.find_element("tag name", "image")
    assert (image.get_attribute("width"), image.get_attribute("height")) == (str(width), str(height))
    drawn = svg.rect
    assert abs(drawn["width"] / drawn["height"] - width / height) < 0.01
    boxes = all_css(page, "#detect-svg rect.box")
    for rect, detection in zip(boxes, reversed(first["detections"]), strict=True):  # best drawn last
        assert float(rect.get_attribute("x")) == pytest.approx(detection["box"][0])
    tags = all_css(page, "#detect-svg g.detection")
    for tag in tags:  # white label text on its colour: WCAG AA
        fill = tag.find_element("css selector", "rect.tag").get_attribute("fill")
        assert browser.contrast(browser.hex_rgb(fill), [255, 255, 255]) >= 4.5
    assert len(all_css(page, "#detect-table tbody tr")) == len(first["detections"])

    # the slider, moved with the keyboard: 0.25 -> 0.60, and the page asks again
    slider = by_id(page, "detect-threshold")
    slider.send_keys(*[Keys.ARROW_RIGHT] * 7)
    assert by_id(page, "detect-threshold-value").text == "0.60"
    wait(page, drawn_with(page, "data-threshold", "0.6"))
    strict = answer(score_threshold="0.6")
    assert sorted(detections_shown(page)) == sorted(d["label"] for d in strict["detections"])
    assert len(strict["detections"]) < len(first["detections"])

    # class filter: only cats
    slider.send_keys(*[Keys.ARROW_LEFT] * 7)
    wait(page, drawn_with(page, "data-threshold", "0.25"))
    by_id(page, "detect-classes-box").find_element("tag name", "summary").click()
    page.find_element("css selector", "#detect-classes input[value='cat']").click()
    wait(page, drawn_with(page, "data-classes", "cat"))
    cats = answer(score_threshold="0.25", classes="cat")
    assert detections_shown(page) == ["cat"] * len(cats["detections"]) and cats["detections"]
    assert by_id(page, "detect-classes-summary").text == "cat"
    page.find_element("css selector", "#detect-classes input[value='cat']").click()  # back to all classes
    wait(page, drawn_with(page, "data-classes", ""))
    assert_readable(page)
    screenshot(page, shots / "detect.png")


def test_video_timeline_charts_when_each_object_is_seen(
    page: Any, server: str, inputs: dict, shots: Path
) -> None:
    open_tab(page, "video")
    by_id(page, "video-file").send_keys(str(inputs["video"]))
    fps = by_id(page, "video-fps")
    fps.clear()
    fps.send_keys("2")
    submit(page, "video")
    wait(page, idle(page, "video-result"), timeout=180)
    files = [("video", ("clip.webm", inputs["video"].read_bytes(), "video/webm"))]
    answer = api(
        server, "POST", "/analyze_video", files=files, data={"sample_fps": "2", "tasks": "detect"}
    ).json()
    tracks = {
        g.get_attribute("data-label"): (
            float(g.get_attribute("data-first")),
            float(g.get_attribute("data-last")),
        )
        for g in all_css(page, "#video-chart g.track")
    }
    assert tracks == {label: (s["first_s"], s["last_s"]) for label, s in answer["summary"].items()}
    assert {"cat", "person"} <= set(tracks)
    assert (
        tracks["cat"][0] < tracks["person"][0] and tracks["cat"][1] < tracks["person"][1]
    )  # the script's order
    # one block per analysed frame showing the label, on the chart
    for label, summary in answer["summary"].items():
        blocks = all_css(page, f"#video-chart g.track[data-label='{label}'] rect.seen")
        assert len(blocks) == summary["frames"]
    rows = [
        [cell.text for cell in row.find_elements("tag name", "td")]
        for row in all_css(page, "#video-table tbody tr")
    ]
    cat, summary = next(row for row in rows if row[0] == "cat"), answer["summary"]["cat"]
    assert cat[3:] == [str(summary["max_count"]), str(summary["frames"])]
    # the video itself plays in the page (WebM): its duration is the clip's
    duration = wait(
        page, lambda d: d.execute_script("return document.getElementById('video-preview').duration")
    )
    assert duration == pytest.approx(6.0, abs=0.3)
    assert_readable(page)
    screenshot(page, shots / "video.png")


def test_translate_fills_languages_and_shows_the_detected_source(page: Any, server: str, shots: Path) -> None:
    from selenium.webdriver.support.ui import Select

    open_tab(page, "translate")
    languages = api(server, "GET", "/translate/languages").json()
    wait(page, lambda d: len(Select(by_id(d, "translate-source")).options) == len(languages["languages"]) + 1)
    source, target = Select(by_id(page, "translate-source")), Select(by_id(page, "translate-target"))
    assert source.options[0].get_attribute("value") == "auto"
    assert {o.get_attribute("value") for o in source.options} == {"auto", *languages["languages"]}
    assert source.first_selected_option.text == "Detect language"
    # a fixed source offers the targets it has a pair to
    source.select_by_value("es")
    reachable = {p["target"] for p in languages["pairs"] if p["source"] == "es"}
    assert {o.get_attribute("value") for o in target.options} == reachable
    source.select_by_value("auto")
    target.select_by_value("es")
    text = by_id(page, "translate-text")
    text.clear()
    text.send_keys(TRANSLATE_TEXT)
    submit(page, "translate")
    wait(page, idle(page, "translate-result"))
    answer = api(
        server, "POST", "/translate", json={"texts": [TRANSLATE_TEXT], "source": "auto", "target": "es"}
    )
    assert by_id(page, "translate-output").text == answer.json()["translations"][0]
    assert by_id(page, "translate-output").get_attribute("lang") == "es"
    assert by_id(page, "translate-detected").text.startswith("Detected: English")
    assert_readable(page)
    screenshot(page, shots / "translate.png")


def audio_duration(driver: Any) -> float:
    return driver.execute_script("const a = document.getElementById('speech-audio'); return a.duration || 0")


def spoken_seconds(driver: Any) -> float:
    return float(by_id(driver, "speech-audio").get_attribute("data-spoken-seconds"))


def test_speech_streams_then_keeps_the_audio_with_its_duration(page: Any, server: str, shots: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    open_tab(page, "speech")
    wait(page, lambda d: by_id(d, "speech-voice").get_attribute("value"))
    voices = api(server, "GET", "/voices").json()["voices"]
    assert by_id(page, "speech-voice").get_attribute("value") == next(v["id"] for v in voices if v["default"])
    text = by_id(page, "speech-text")
    text.clear()
    text.send_keys(SPEECH_TEXT)
    submit(page, "speech")  # streaming is on by default
    wait(page, idle(page, "speech-result"))
    streamed = wait(page, lambda d: audio_duration(d))
    assert by_id(page, "speech-audio").get_attribute("data-streamed") == "true"
    assert by_id(page, "speech-info").text.startswith("Streamed")
    # the audio element holds all that was streamed
    assert streamed == pytest.approx(spoken_seconds(page), abs=0.01)
    # as long as the API speaks it (the voice samples its pacing: lengths vary by a few %)
    whole = api(server, "POST", "/synthesize", json={"text": SPEECH_TEXT})
    assert streamed == pytest.approx(float(whole.headers["X-Audio-Duration"]), rel=0.15)

    # the whole file at a faster speed: the audio element's duration is the one the API states
    by_id(page, "speech-stream").click()
    by_id(page, "speech-speed").send_keys(*[Keys.ARROW_RIGHT] * 5)  # 1.0 -> 1.5
    assert by_id(page, "speech-speed-value").text == "1.5×"
    submit(page, "speech")
    wait(page, lambda d: by_id(d, "speech-audio").get_attribute("data-streamed") == "false")
    faster = wait(page, lambda d: audio_duration(d))
    assert faster == pytest.approx(spoken_seconds(page), abs=0.01)  # its X-Audio-Duration
    assert faster < 0.85 * streamed
    assert_readable(page)
    screenshot(page, shots / "speech.png")


def titles(driver: Any, list_id: str) -> list[str]:
    return [e.text for e in all_css(driver, f"#{list_id} .title")]


def test_recommend_for_a_user_and_a_query_then_similar_titles(page: Any, server: str, shots: Path) -> None:
    open_tab(page, "recommend")
    user = by_id(page, "recommend-user")
    user.clear()
    user.send_keys("1")
    submit(page, "recommend")
    wait(page, idle(page, "recommend-result"))
    answer = api(server, "POST", "/recommend", json={"user_id": "1", "k": 10}).json()
    assert titles(page, "recommend-list") == [item["title"] for item in answer["items"]]
    assert "from the user's history" in by_id(page, "recommend-info").text

    all_css(page, "#recommend-list button")[0].click()  # similar items for a clicked title
    wait(page, idle(page, "similar-result"))
    similar = api(
        server, "POST", "/similar_items", json={"item_id": answer["items"][0]["item_id"], "k": 10}
    ).json()
    assert titles(page, "similar-list") == [item["title"] for item in similar["items"]]
    assert by_id(page, "similar-heading").text == f"Similar to {answer['items'][0]['title']}"
    assert all_css(page, "#recommend-list button")[0].get_attribute("aria-pressed") == "true"
    assert_readable(page)
    screenshot(page, shots / "recommend.png")

    by_id(page, "recommend-mode-query").click()
    query = by_id(page, "recommend-query")
    query.clear()
    query.send_keys("space adventure")
    submit(page, "recommend")
    wait(page, lambda d: by_id(d, "recommend-heading").text == "For “space adventure”")
    wait(page, idle(page, "recommend-result"))
    by_query = api(server, "POST", "/recommend", json={"query": "space adventure", "k": 10}).json()
    assert titles(page, "recommend-list") == [item["title"] for item in by_query["items"]]


# ---------------------------------------------------------------------------- keyboard, narrow screens


def focus_ring(driver: Any) -> str:
    """The focused element's outline (the page's focus style), e.g. '3px solid'."""
    return driver.execute_script(
        "const s = getComputedStyle(document.activeElement); return s.outlineWidth + ' ' + s.outlineStyle"
    )


def test_every_control_is_reachable_by_keyboard_with_a_visible_focus(page: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    tab = by_id(page, "tab-classify")
    tab.click()
    assert tab.get_attribute("aria-selected") == "true"
    ActionChains(page).send_keys(Keys.ARROW_RIGHT).perform()  # arrows move between tabs
    assert (
        page.switch_to.active_element == by_id(page, "tab-detect")
        and by_id(page, "panel-detect").is_displayed()
    )
    ActionChains(page).send_keys(Keys.END).perform()
    assert page.switch_to.active_element == by_id(page, "tab-recommend")
    ActionChains(page).send_keys(Keys.HOME).perform()
    assert page.switch_to.active_element == by_id(page, "tab-classify")
    assert focus_ring(page) in ("3px solid", "3px auto")

    for task in ("classify", "detect", "video", "translate", "speech", "recommend"):
        open_tab(page, task)  # focus on the tab: Tab then walks into its panel
        wanted = page.execute_script(_MARK_CONTROLS, task)
        reached, unringed = set(), []
        for _ in range(3 * wanted + 5):
            ActionChains(page).send_keys(Keys.TAB).perform()
            index, ringed = page.execute_script(_FOCUSED, task)
            if index is None:
                break  # left the panel
            reached.add(index)
            if not ringed:
                unringed.append(page.switch_to.active_element.get_attribute("outerHTML")[:120])
        missing = page.execute_script("return window.__controls.filter((_, i) => !arguments[0].includes(i))"
                                      ".map((e) => e.outerHTML.slice(0, 120))", sorted(reached))  # fmt: skip
        assert missing == [], (task, missing)
        assert unringed == [], (task, unringed)


# The panel's controls a keyboard user must reach: those on screen (a file input is hidden
# behind its drop zone, which shows its focus), one stop per radio group.
_MARK_CONTROLS = """
const panel = document.getElementById('panel-' + arguments[0]);
const controls = [...panel.querySelectorAll('input, select, textarea, button, summary, a[href]')];
window.__controls = controls.filter((e) =>
  (e.type === 'file' || e.checkVisibility({opacityProperty: true})) && !(e.type === 'radio' && !e.checked));
return window.__controls.length;
"""
# The focused control's index in __controls (null once focus left the panel), and whether a
# 3 px focus ring shows: its own outline, or its drop zone's.
_FOCUSED = """
const panel = document.getElementById('panel-' + arguments[0]);
const active = document.activeElement;
if (!panel.contains(active)) return [null, false];
const ring = (e) => {
  const s = getComputedStyle(e);
  return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 3;
};
const drop = active.closest('.drop');
return [window.__controls.indexOf(active), drop ? ring(drop) : ring(active)];
"""


def test_narrow_screen_fits_without_sideways_scrolling(page: Any, inputs: dict, shots: Path) -> None:
    page.set_window_size(390, 844)
    wait(page, lambda d: d.execute_script("return window.innerWidth") <= 400)
    for task in ("classify", "detect", "video", "translate", "speech", "recommend"):
        open_tab(page, task)
        overflow = page.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (task, overflow)
    for tab in all_css(page, "[role=tab]"):  # all tabs in sight: they wrap, none scrolled away
        assert page.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return r.left >= 0 && r.right <= innerWidth", tab
        )
    open_tab(page, "detect")
    by_id(page, "detect-file").send_keys(str(inputs["scene"]))
    wait(page, idle(page, "detect-result"))
    svg = by_id(page, "detect-svg").rect
    assert svg["width"] <= 390 and svg["width"] > 300  # the drawing shrinks to the screen
    assert page.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert_readable(page)
    screenshot(page, shots / "detect-narrow.png")


def test_without_keys_the_page_asks_for_none(driver: Any, pais_server: str) -> None:
    """The shared test server has no API keys: the page connects at once and works."""
    driver.set_window_size(1280, 1000)
    driver.get(pais_server + "/ui#translate")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    wait(driver, lambda d: by_id(d, "server-status").text.startswith("Connected"))
    assert not by_id(driver, "key-box").is_displayed() and not by_id(driver, "key-held").is_displayed()
    assert by_id(driver, "panel-translate").is_displayed()
    wait(driver, lambda d: by_id(d, "translate-target").get_attribute("value") == "es")
    submit(driver, "translate")
    wait(driver, idle(driver, "translate-result"))
    assert by_id(driver, "translate-output").text
    assert all("authorization" not in r["headers"] for r in browser.sent_requests(driver))
    assert_only_this_server(driver, pais_server)
