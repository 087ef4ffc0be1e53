"""The registry page as a person uses it: headless Chromium on the report file, on `serve`, on a plan.

Chromium and ChromeDriver come from the machine (Debian's `chromium` and
`chromium-driver`, installed by scripts/browser.sh from scripts/test.sh), driven by
Selenium. Without them these tests skip and say why. A screenshot of every page is
kept in test-artifacts/page/ (or $LLM_REGISTRY_TEST_ARTIFACTS/page/), named at the
end of the run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from reconciler.secrets import key_fingerprint
from tests.cli.conftest import SCREENSHOTS, RunCli
from tests.cli.test_serve import start_serve, stop
from tests.dbutil import HOSTILE_MODEL_NAME, TEST_PASSPHRASE, insert_page_registry
from tests.factories import CANARY_KEY, ner_model, write_registry_file

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
ALL_MODELS = {"gliner", "gpt-4o-mini", "nomic-embed", "old-embed", HOSTILE_MODEL_NAME}


def artifacts_dir() -> Path:
    """Where screenshots go: $LLM_REGISTRY_TEST_ARTIFACTS/page, else test-artifacts/page (gitignored)."""
    base = Path(os.environ.get("LLM_REGISTRY_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    return base / "page"


def _find_browser() -> tuple[str, str] | str:
    """(browser, driver) paths, or the reason there is none."""
    browser = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return "no Chromium/ChromeDriver on this machine (scripts/browser.sh installs Debian's chromium and chromium-driver as root)"
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, its console log kept (to see CSP violations)."""
    found = _find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (it is in the dev extra: pip install -e '.[dev]')")
    binary, driver_path = found
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    artifacts_dir().mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str) -> None:
    path = artifacts_dir() / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    SCREENSHOTS.append(path)


def console_problems(driver: Any) -> list[str]:
    """Console messages of level SEVERE or mentioning the Content Security Policy."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]


def by_testid(driver: Any, name: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{css_string(name)}"]')


def css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def visible_rows(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    table = by_testid(driver, "model-list-table")
    return {
        row.get_attribute("data-testid").removeprefix("model-row-")
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        if row.is_displayed()
    }


@pytest.fixture
def seeded(engine: Any) -> dict[str, str]:
    with engine.begin() as connection:
        return insert_page_registry(connection)


@pytest.fixture
def report_page(run_cli: RunCli, database_url: str, seeded: dict[str, str], tmp_path: Path) -> str:
    """The file `report --html` wrote, as a file:// URL."""
    out = tmp_path / "registry.html"
    result = run_cli("report", "--html", str(out), "--database-url", database_url)
    assert result.exit_code == 0, result.output
    return out.as_uri()


def assert_filters_work(driver: Any) -> None:
    from selenium.webdriver.support.ui import Select

    assert visible_rows(driver) == ALL_MODELS
    assert by_testid(driver, "model-count").text == "5 of 5 models shown"
    by_testid(driver, "model-type-tab-embedding").click()
    assert visible_rows(driver) == {"nomic-embed", "old-embed", HOSTILE_MODEL_NAME}
    assert by_testid(driver, "model-type-tab-embedding").get_attribute("aria-selected") == "true"
    assert by_testid(driver, "model-type-tab-all").get_attribute("aria-selected") == "false"
    by_testid(driver, "model-type-tab-generation").click()
    assert visible_rows(driver) == {"gpt-4o-mini"}
    by_testid(driver, "model-type-tab-ner").click()
    assert visible_rows(driver) == {"gliner"}
    by_testid(driver, "model-type-tab-all").click()
    assert visible_rows(driver) == ALL_MODELS
    provider = Select(by_testid(driver, "model-provider-filter"))
    provider.select_by_value("openai")
    assert visible_rows(driver) == {"gpt-4o-mini"}
    by_testid(driver, "model-type-tab-embedding").click()
    assert visible_rows(driver) == set()
    assert by_testid(driver, "model-list-empty").is_displayed()
    assert by_testid(driver, "model-list-empty").text == "No models match these filters."
    provider.select_by_value("all")
    by_testid(driver, "model-type-tab-all").click()
    assert visible_rows(driver) == ALL_MODELS
    assert not by_testid(driver, "model-list-empty").is_displayed()


def test_report_file_tabs_badges_and_dependent_kbs(browser: Any, report_page: str) -> None:
    browser.get(report_page)
    assert browser.title == "LLM model registry"
    assert by_testid(browser, "model-list-table").is_displayed()
    screenshot(browser, "registry")
    assert_filters_work(browser)
    # AC-7.9.9: the status badges
    assert by_testid(browser, "model-status-badge-nomic-embed").text == "Active"
    assert by_testid(browser, "model-status-badge-old-embed").text == "Inactive"
    assert by_testid(browser, "model-default-mark-gpt-4o-mini").text == "Default"
    # AC-7.9.11: a model KBs use shows them, and that deleting it is blocked
    detail = by_testid(browser, "model-detail-nomic-embed")
    assert not detail.is_displayed()
    by_testid(browser, "model-link-nomic-embed").click()
    assert detail.is_displayed()
    from selenium.webdriver.common.by import By

    warning = detail.find_element(By.CSS_SELECTOR, '[data-testid="kb-dependency-warning"]')
    assert warning.is_displayed() and "deleting this model" in warning.text and "is blocked" in warning.text
    kbs = detail.find_element(By.CSS_SELECTOR, '[data-testid="dependent-kb-list"]')
    assert [item.text for item in kbs.find_elements(By.TAG_NAME, "li")] == ["legal-kb", "support-kb"]
    assert "768-dimension vector" in detail.text  # its last connection test
    screenshot(browser, "registry-model-detail")
    detail.find_element(By.CSS_SELECTOR, '[data-testid="model-detail-close"]').click()
    assert not detail.is_displayed()
    assert console_problems(browser) == []


def test_a_name_with_html_is_text_and_runs_nothing(browser: Any, report_page: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(report_page)
    link = by_testid(browser, f"model-link-{HOSTILE_MODEL_NAME}")
    assert link.text == HOSTILE_MODEL_NAME
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 1
    link.click()
    detail = by_testid(browser, f"model-detail-{HOSTILE_MODEL_NAME}")
    assert detail.is_displayed()
    assert "<script>document.title='pwned'</script>" in detail.text
    assert browser.title == "LLM model registry"
    screenshot(browser, "registry-hostile-name")


def test_no_key_anywhere_in_the_page(browser: Any, report_page: str) -> None:
    browser.get(report_page)
    fingerprint = key_fingerprint(CANARY_KEY, TEST_PASSPHRASE)
    text = browser.find_element("tag name", "body").get_attribute("textContent")
    for content in (browser.page_source, text):
        assert CANARY_KEY not in content and fingerprint not in content
    assert by_testid(browser, "model-api-key-gpt-4o-mini").get_attribute("textContent").startswith("set")


def test_serve_in_the_browser(browser: Any, database_url: str, seeded: dict[str, str]) -> None:
    served = start_serve(database_url)
    try:
        browser.get(f"http://127.0.0.1:{served.port}/")
        assert by_testid(browser, "model-status-badge-gpt-4o-mini").text == "Active"
        assert_filters_work(browser)
        screenshot(browser, "registry-served")
        browser.get(f"http://127.0.0.1:{served.port}/#model-gpt-4o-mini")
        assert by_testid(browser, "model-detail-gpt-4o-mini").is_displayed()
        assert "authentication_error" in by_testid(browser, "model-detail-gpt-4o-mini").text
        assert console_problems(browser) == []  # the CSP header lets the page's own script and style run
    finally:
        code, _, stderr = stop(served)
    assert code == 0, stderr


def test_the_plan_page(browser: Any, run_cli: RunCli, database_url: str, seeded: dict[str, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    directory = tmp_path / "registry.d"
    write_registry_file(directory, [ner_model(name="gliner", model_id="gliner-large")])
    result = run_cli("plan", str(directory), "--database-url", database_url, "--format", "html")
    assert result.exit_code == 3, result.output
    page = tmp_path / "plan.html"
    page.write_text(result.stdout)
    browser.get(page.as_uri())
    assert by_testid(browser, "plan-summary").text.startswith("Plan: 0 to create, 1 to update, 0 to delete, 2 blocked.")
    actions = [a.get_attribute("data-testid") for a in browser.find_elements(By.CSS_SELECTOR, '[data-testid^="plan-action-"]')]
    assert actions == ["plan-action-gpt-4o-mini", "plan-action-nomic-embed", "plan-action-gliner"]
    assert by_testid(browser, "plan-kb-list-nomic-embed").text.split() == ["legal-kb", "support-kb"]
    assert by_testid(browser, "plan-changes-gliner").text.endswith('model_id "gliner-medium" -> "gliner-large"')
    screenshot(browser, "plan")
    assert console_problems(browser) == []
