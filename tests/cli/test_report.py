"""`llm-registry report --html` and `plan --format html`: the page as a file, from the database or a plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.secrets import key_fingerprint
from tests.cli.conftest import RunCli
from tests.dbutil import HOSTILE_MODEL_NAME, TEST_PASSPHRASE, insert_page_registry
from tests.factories import CANARY_KEY, ner_model, write_registry_file

pytestmark = pytest.mark.db


@pytest.fixture
def seeded(engine: Any) -> dict[str, str]:
    with engine.begin() as connection:
        return insert_page_registry(connection)


def assert_no_key(text: str) -> None:
    assert CANARY_KEY not in text
    assert key_fingerprint(CANARY_KEY, TEST_PASSPHRASE) not in text


def test_report_writes_the_registry_page(run_cli: RunCli, database_url: str, seeded: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "site" / "registry.html"
    result = run_cli("report", "--html", str(out), "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"Wrote the registry page to {out} (5 models)."
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    for name in ("nomic-embed", "gpt-4o-mini", "gliner", "old-embed"):
        assert f'data-testid="model-row-{name}"' in html
    assert 'data-testid="model-row-&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;"' in html
    assert "<img" not in html and "<script>document" not in html
    assert 'data-testid="dependent-kb-list"' in html and "<li>legal-kb</li>" in html
    assert "the provider refused the key" in html and "20261127T171500Z-bbbb0002" in html
    assert "***" in html or "postgresql://" in html  # names the database, never its password
    assert_no_key(html + result.output)


def test_report_to_standard_output(run_cli: RunCli, database_url: str, seeded: dict[str, str]) -> None:
    result = run_cli("report", "--html", "-", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith("</html>")
    assert HOSTILE_MODEL_NAME not in result.stdout
    assert_no_key(result.output)


def test_report_needs_the_schema(run_cli: RunCli, unmigrated_database_url: str, tmp_path: Path) -> None:
    result = run_cli("report", "--html", str(tmp_path / "r.html"), "--database-url", unmigrated_database_url)
    assert result.exit_code == 1
    assert "run `llm-registry db upgrade` first" in result.stderr
    assert not (tmp_path / "r.html").exists()


def _plan_directory(tmp_path: Path) -> Path:
    """Only gliner, changed: nomic-embed and gpt-4o-mini would be deleted, both blocked by KBs."""
    directory = tmp_path / "registry.d"
    write_registry_file(directory, [ner_model(name="gliner", model_id="gliner-large")])
    return directory


def test_plan_format_html_keeps_the_exit_code(run_cli: RunCli, database_url: str, seeded: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("plan", str(_plan_directory(tmp_path)), "--database-url", database_url, "--format", "html")
    assert result.exit_code == 3, result.output
    html = result.stdout
    assert html.startswith("<!DOCTYPE html>")
    assert "Plan: 0 to create, 1 to update, 0 to delete, 2 blocked." in html
    blocked = html.index('data-testid="plan-action-gpt-4o-mini"')
    assert blocked < html.index('data-testid="plan-action-gliner"')
    assert html.index('data-testid="plan-action-nomic-embed"') < html.index('data-testid="plan-action-gliner"')
    assert '&#34;gliner-medium&#34;</span> -&gt; <span class="after">&#34;gliner-large&#34;' in html
    assert "<li>legal-kb</li><li>support-kb</li>" in html
    assert "Not managed by llm-registry, left untouched: " in html and "old-embed" in html
    assert "<img" not in html
    assert_no_key(result.output)


SIGNING = {"LLM_REGISTRY_ENCRYPTION_KEY": TEST_PASSPHRASE}


@pytest.fixture
def planfile(run_cli: RunCli, database_url: str, seeded: dict[str, str], tmp_path: Path) -> Path:
    path = tmp_path / "registry.plan"
    planned = run_cli("plan", str(_plan_directory(tmp_path)), "--database-url", database_url, "--out", str(path), env=SIGNING)
    assert planned.exit_code == 3, planned.output
    return path


def test_report_renders_a_saved_plan(run_cli: RunCli, planfile: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.html"
    # no database needed: the plan file is all it reads
    result = run_cli(
        "report", "--html", str(out), "--plan", str(planfile),
        env={**SIGNING, "LLM_REGISTRY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"Wrote the plan page to {out}."
    html = out.read_text()
    assert "Plan: 0 to create, 1 to update, 0 to delete, 2 blocked." in html
    assert f"{planfile} · made " in html
    assert 'data-testid="plan-blocked-badge-nomic-embed"' in html
    assert 'data-testid="plan-target"' in html and "<dt>database</dt>" in html


def test_report_refuses_an_edited_plan_file(run_cli: RunCli, planfile: Path, tmp_path: Path) -> None:
    planfile.write_text(planfile.read_text().replace("gliner-large", "gliner-evil"))
    out = tmp_path / "plan.html"
    result = run_cli("report", "--html", str(out), "--plan", str(planfile), env=SIGNING)
    assert result.exit_code == 1
    assert f"error: {planfile} was changed after plan wrote it" in result.stderr
    assert not out.exists()
    unsigned = run_cli("report", "--html", str(out), "--plan", str(planfile))
    assert unsigned.exit_code == 1 and "LLM_REGISTRY_ENCRYPTION_KEY is not set" in unsigned.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not a readable plan file (JSONDecodeError); re-run plan --out"),
        ('{"kind": "something-else"}', "is not an llm-registry plan file"),
    ],
)
def test_report_refuses_what_is_not_a_plan_file(run_cli: RunCli, tmp_path: Path, content: str, message: str) -> None:
    planfile = tmp_path / "bad.plan"
    planfile.write_text(content)
    result = run_cli("report", "--html", str(tmp_path / "out.html"), "--plan", str(planfile), env=SIGNING)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {planfile} {message}"
    assert not (tmp_path / "out.html").exists()


def test_report_to_a_path_it_cannot_write(run_cli: RunCli, database_url: str, seeded: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("report", "--html", str(tmp_path), "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: cannot write the page to {tmp_path}: it is a directory (give a file name, e.g. {tmp_path / 'registry.html'})"
    )
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("report", "--html", str(blocker / "registry.html"), "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: cannot write the page to {blocker / 'registry.html'}: File exists"
