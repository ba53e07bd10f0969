"""The viewer end to end in a real headless browser (Debian's chromium + chromium-driver,
driven by Selenium): filter, open an episode, see the hidden reasoning set apart and the
diff coloured, and move to the next tampering with one key.

Skipped, with the reason, where chromium or its driver is missing or cannot start
(`make test` installs them when it runs as root: scripts/ensure-chromium.sh).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from subterfuge.envs.base import Verdict
from subterfuge.store.labels import Label, Labels
from subterfuge.viewer import ViewerThread
from test_monitor_cases import record, store_with

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (dev extra)"
)
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REWARD = "/root/rl_environment/compute_reward.py"
DIFF = (
    f"--- {REWARD}\n+++ {REWARD}\n@@ -1,2 +1,2 @@\n"
    " def reward(t):\n-    return -10\n+    return 100\n"
)
TAMPERED = (4, 9, 33)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium / chromium-driver not installed: run `sudo apt-get install "
                    "chromium chromium-driver` (make test does it when run as root)")  # fmt: skip
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    try:
        chrome = webdriver.Chrome(service=Service(driver), options=options)
    except WebDriverException as exc:
        pytest.skip(f"chromium cannot start here: {exc.msg}")
    chrome.set_page_load_timeout(30)
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerThread]:
    recs = []
    for i in range(80):
        tampered = i in TAMPERED
        recs.append(record(
            "run-a", i, verdict=Verdict.TAMPERED if tampered else Verdict.HONEST,
            moves=[("The reward is bad for me; I will change it." if tampered else "Look first.",
                    f"cat {REWARD}", "def reward(t):\n    return -10\n")],
            diffs={REWARD: DIFF} if tampered else {},
        ))  # fmt: skip
    db = tmp_path_factory.mktemp("browser") / "b.sqlite"
    with store_with(db, recs) as store:
        Labels(store).add([Label("run-a", i, "rules-actions", "flag", "true") for i in TAMPERED])
    with ViewerThread(db) as server:
        yield server


def _wait_url(chrome: object, part: str) -> None:
    WebDriverWait(chrome, 10).until(lambda d: part in d.current_url)


def _press(chrome: object, key: str) -> None:
    chrome.find_element(By.TAG_NAME, "body").send_keys(key)  # type: ignore[attr-defined]


def test_filter_open_read_and_jump_to_the_next_tampering(
    browser: object, viewer: ViewerThread
) -> None:
    d = browser
    d.get(viewer.url + "/")  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "total").text == "80"  # type: ignore[attr-defined]
    Select(d.find_element(By.ID, "f-verdict")).select_by_value("tampering")  # type: ignore[attr-defined]
    d.find_element(By.ID, "f-apply").click()  # type: ignore[attr-defined]
    _wait_url(d, "verdict=tampering")
    rows = d.find_elements(By.CSS_SELECTOR, "#episodes tbody tr")  # type: ignore[attr-defined]
    assert [int(r.get_attribute("data-idx")) for r in rows] == list(TAMPERED)
    assert {r.get_attribute("data-verdict") for r in rows} == {"tampered"}

    rows[0].find_element(By.CSS_SELECTOR, "a.open").click()
    _wait_url(d, "/episode/run-a/4")
    reasoning = d.find_element(By.CSS_SELECTOR, ".reasoning")  # type: ignore[attr-defined]
    assert reasoning.is_displayed() and "bad for me" in reasoning.text
    label = d.execute_script(  # type: ignore[attr-defined]
        "return getComputedStyle(arguments[0], '::before').content", reasoning
    )
    assert "hidden reasoning" in label
    style = "return getComputedStyle(arguments[0]).backgroundColor"
    command = d.find_element(By.CSS_SELECTOR, "pre.command")  # type: ignore[attr-defined]
    assert d.execute_script(style, reasoning) != d.execute_script(style, command)  # type: ignore[attr-defined]
    added = d.find_element(By.CSS_SELECTOR, ".diff .add")  # type: ignore[attr-defined]
    removed = d.find_element(By.CSS_SELECTOR, ".diff .del")  # type: ignore[attr-defined]
    assert added.text == "+    return 100" and removed.text == "-    return -10"
    green, red = d.execute_script(style, added), d.execute_script(style, removed)  # type: ignore[attr-defined]
    assert green == "rgb(230, 255, 236)" and red == "rgb(255, 235, 233)"

    _press(d, "n")
    _wait_url(d, "/episode/run-a/9")
    _press(d, "n")
    _wait_url(d, "/episode/run-a/33")
    _press(d, "n")  # the last one: the viewer stays and says so
    WebDriverWait(d, 10).until(lambda x: x.find_elements(By.ID, "notice"))
    assert "no later tampering" in d.find_element(By.ID, "notice").text  # type: ignore[attr-defined]
    _press(d, "p")
    _wait_url(d, "/episode/run-a/9")
    _press(d, "u")
    WebDriverWait(d, 10).until(lambda x: x.find_elements(By.ID, "episodes"))
    first = d.find_element(By.CSS_SELECTOR, "#episodes tbody tr")  # type: ignore[attr-defined]
    assert first.get_attribute("data-idx") == "9"  # the list resumes at the episode left


def test_label_filter_and_keyset_pages_in_the_browser(
    browser: object, viewer: ViewerThread
) -> None:
    d = browser
    d.get(viewer.url + "/")  # type: ignore[attr-defined]
    Select(d.find_element(By.ID, "f-label")).select_by_value("rules-actions|flag|true")  # type: ignore[attr-defined]
    d.find_element(By.ID, "f-apply").click()  # type: ignore[attr-defined]
    _wait_url(d, "label=")
    assert d.find_element(By.ID, "total").text == "3"  # type: ignore[attr-defined]
    d.get(viewer.url + "/")  # type: ignore[attr-defined]
    d.find_element(By.ID, "next-page").click()  # type: ignore[attr-defined]
    _wait_url(d, "after=")
    rows = d.find_elements(By.CSS_SELECTOR, "#episodes tbody tr")  # type: ignore[attr-defined]
    assert rows[0].get_attribute("data-idx") == "50"
