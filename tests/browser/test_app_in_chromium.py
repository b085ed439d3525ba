"""The app in a real browser: served by `streamlit run dashboards/app.py` on 127.0.0.1 over the seeded
home of the AppTest tests (`tests/dashboards/conftest.py`), every page opened in headless Debian
Chromium, waited on until its data has rendered, checked for Streamlit error elements, and
screenshotted (under the test's tmp dir, and $ODDLY_SCREENSHOTS when set).

Skips only when chromium or chromedriver is missing; `.ci/run` installs both, so CI runs it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from benchmarks.dashboard import (
    APP,
    CHART,
    chromium,
    chromium_paths,
    load_page,
    nav_link,
    navigate,
    page_titles,
    page_urls,
    picker_option,
    serve_app,
)
from tests.dashboards.conftest import MarketHome, market_home  # noqa: F401 - the session fixture

pytestmark = pytest.mark.slow

# What each page shows on the seeded home once its data is there (beyond its title).
EXPECTED = {
    "scanner": ['[data-testid="stDataFrame"]'],
    "event": ['[data-testid="stDataFrame"]', '[data-testid="stVegaLiteChart"]'],
    "divergence": ['[data-testid="stVegaLiteChart"]'],
    "bookmakers": ['[data-testid="stDataFrame"]'],
    "alerts": ['[data-testid="stDataFrame"]'],
    "backtest": [],  # no backtest run in the seeded home: the page says how to make one
    "models": [],
    "rules": ['[data-testid="stDataFrame"]'],
}


def test_every_page_renders_its_data_without_an_error(
    market_home: MarketHome,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    paths = chromium_paths()
    if paths is None:
        pytest.skip("Debian's chromium and chromedriver are not installed (`.ci/run` installs them)")
    from selenium.webdriver.common.by import By

    urls = page_urls()
    pages = list(urls)
    assert set(pages) == set(EXPECTED), "a page was added or renamed: say what it shows in EXPECTED"
    shots = [tmp_path / "screenshots"]
    if os.environ.get("ODDLY_SCREENSHOTS"):
        shots.append(Path(os.environ["ODDLY_SCREENSHOTS"]))
    for folder in shots:
        folder.mkdir(parents=True, exist_ok=True)
    queries = {"event": f"?event_id={market_home.man_utd}&market=1x2&outcome=home"}

    with serve_app(market_home.home, tmp_path / "streamlit.log") as base:
        driver = chromium(paths)
        try:
            # the root URL first, as a user's first visit: it runs app.py's st.navigation (a page
            # URL opened first would not, see the next test)
            assert load_page(driver, f"{base}/", timeout=60).seconds is not None, "/: not rendered in 60 s"
            for page in pages:
                load = load_page(driver, f"{base}/{urls[page]}{queries.get(page, '')}", timeout=60)
                for folder in shots:
                    driver.save_screenshot(str(folder / f"{page}.png"))
                assert load.seconds is not None, f"{page}: not rendered in 60 s"
                errors = [(kind, text) for kind, text in load.problems if kind != "warning"]
                assert not errors, f"{page}: {errors}"
                title = driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"] h1').text
                assert title.startswith(page.capitalize()), (page, title)
                for selector in EXPECTED[page]:
                    assert driver.find_elements(By.CSS_SELECTOR, selector), f"{page}: no {selector}"
        finally:
            driver.quit()
    for folder in shots:
        assert sorted(p.stem for p in folder.glob("*.png")) == sorted(pages)


def test_the_app_s_navigation_renders_every_page_in_the_open_app(
    market_home: MarketHome,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    """In-app navigation, as `oddly bench dashboard` times it: each sidebar link in one session
    renders its page, and the Event page's picker then opens the chosen event with its charts."""
    paths = chromium_paths()
    if paths is None:
        pytest.skip("Debian's chromium and chromedriver are not installed (`.ci/run` installs them)")
    from selenium.webdriver.common.by import By

    titles = page_titles()
    assert set(titles) == set(EXPECTED)
    with serve_app(market_home.home, tmp_path / "streamlit.log") as base:
        driver = chromium(paths)
        try:
            assert load_page(driver, f"{base}/", timeout=60).seconds is not None
            for page in [*list(titles)[1:], *list(titles)[:1]]:  # from the default page, back to it
                shown = navigate(driver, nav_link(driver, titles[page]), titles[page], timeout=60)
                assert shown.seconds is not None, f"{page}: not rendered in 60 s"
                assert not [p for p in shown.problems if p[0] != "warning"], (page, shown.problems)
                assert driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"] h1').text == titles[page]
                if page == "event":
                    option = picker_option(driver, "Event", "Manchester United v Tottenham")
                    picked = navigate(driver, option, "Event", CHART, timeout=60)
                    assert picked.seconds is not None, "the picked event did not render in 60 s"
                    heading = driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"] h2').text
                    assert heading == "Manchester United v Tottenham Hotspur"
                    assert len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')) == 3
        finally:
            driver.quit()


def test_a_deep_link_opened_first_gets_the_app_s_navigation(
    market_home: MarketHome,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    """An alert's link to the Event page, the first request after the server started, runs the app
    (its `st.navigation`, titles and layout), not the page file alone: Streamlit runs a `pages/`
    folder beside the entry point as a v1 multipage app until `st.navigation` has run once."""
    paths = chromium_paths()
    if paths is None:
        pytest.skip("Debian's chromium and chromedriver are not installed (`.ci/run` installs them)")
    from selenium.webdriver.common.by import By

    titles = re.findall(r'st\.Page\([^)]*title="([^"]+)"', APP.read_text())
    with serve_app(market_home.home, tmp_path / "streamlit.log") as base:
        driver = chromium(paths)
        try:
            load = load_page(driver, f"{base}/event?event_id={market_home.man_utd}", timeout=60)
            driver.save_screenshot(str(tmp_path / "deep-link.png"))
            assert load.seconds is not None, "not rendered in 60 s"
            links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
            shown = [link.text.splitlines()[-1] for link in links]
        finally:
            driver.quit()
    assert shown == titles, "the sidebar is Streamlit's v1 page list: is the page folder called pages/?"
