"""Headless Chromium for page tests: Debian's `chromium` and `chromium-driver` (installed by
`make system-deps` from requirements/apt-dev.txt) driven by Selenium. Nothing is downloaded:
Selenium is given both paths, so Selenium Manager never looks for a driver or a browser.

Also here: reading what the page did (console messages, the requests it sent, from
Chromium's performance log) and measuring colour contrast in the rendered page.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Without the background-networking flags Chromium keeps calling Google's services, which
# this machine refuses; the page itself must reach nothing but the server under test.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
)


def missing() -> str | None:
    """Why a browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing: `make system-deps` installs Debian's chromium and chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: `make setup` installs requirements/dev.txt"
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A Selenium WebDriver on a fresh headless Chromium profile, logging the browser's
    console and network events."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, should it ever run: no downloads
    profile = tempfile.mkdtemp(prefix="pais-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """Console messages at level SEVERE since the last call (JS errors, CSP refusals,
    failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def sent_requests(driver: Any) -> list[dict[str, Any]]:
    """Requests the page sent since the last call: {"url", "method", "headers"}."""
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
            requests.append({"url": request["url"], "method": request["method"], "headers": headers})
    return requests


# For every visible element with text of its own: its colour, the background it is drawn on
# (the first opaque background among it and its ancestors), its font size and weight.
_TEXT_COLOURS = """
const root = arguments[0];
const parse = (c) => {
  const m = c.match(/[\\d.]+/g).map(Number);
  return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
};
const out = [];
for (const node of root.querySelectorAll('*')) {
  if (node.closest('svg')) continue;
  const own = [...node.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const isControl = ['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON'].includes(node.tagName)
    && !['checkbox', 'radio', 'range', 'file'].includes(node.type);
  if (!own && !isControl) continue;
  const box = node.getBoundingClientRect();
  const visible = node.checkVisibility({opacityProperty: true, visibilityProperty: true});
  if (!box.width || !box.height || !visible) continue;
  const style = getComputedStyle(node);
  let bg = null;
  for (let up = node; up; up = up.parentElement) {
    const c = parse(getComputedStyle(up).backgroundColor);
    if (c[3] >= 0.99) { bg = c; break; }
  }
  out.push({text: (node.textContent || node.value || '').trim().slice(0, 40), tag: node.tagName,
            colour: parse(style.color), background: bg || [255, 255, 255, 1],
            size: parseFloat(style.fontSize), weight: Number(style.fontWeight) || 400});
}
return out;
"""


def luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hex_rgb(colour: str) -> list[float]:
    colour = colour.lstrip("#")
    return [int(colour[i : i + 2], 16) for i in (0, 2, 4)]


def low_contrast_text(driver: Any, root: Any) -> list[str]:
    """Text under `root` below WCAG AA: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold)."""
    failures = []
    for item in driver.execute_script(_TEXT_COLOURS, root):
        large = item["size"] >= 24 or (item["size"] >= 18.66 and item["weight"] >= 700)
        needed = 3.0 if large else 4.5
        ratio = contrast(item["colour"], item["background"])
        if ratio < needed:
            failures.append(f"{item['tag']} {item['text']!r}: {ratio:.2f} < {needed}")
    return failures
