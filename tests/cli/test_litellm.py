"""`import --from-litellm` and `export --format litellm`, as a user runs them; the exported config
loaded into a real `litellm.Router` that calls every provider through the fake provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.providers import PROVIDER_MATRIX, translate_endpoint
from tests.cli.conftest import RunCli
from tests.factories import CANARY_KEY, write_registry_file
from tests.fakes.provider import FakeProvider
from tests.integration.test_connection import CASES, natural_endpoint

CONFIG = Path(__file__).parent.parent / "cases" / "litellm" / "proxy-config.yaml"
LITERAL_KEY = "sk-literal-canary-0123456789abcdef"


def test_import_writes_registry_files_that_validate(run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "registry.d"
    result = run_cli("import", "--from-litellm", str(CONFIG), "--out", str(out))
    assert result.exit_code == 1, result.output  # four deployments reported as errors, not imported
    assert f"Imported 7 of 11 deployments into {out}: anthropic.yaml, azure.yaml, cohere.yaml, gemini.yaml, ollama.yaml, openai.yaml" in result.stdout
    assert "  LLM_KEY_GPT_3_5_TURBO  model gpt-3.5-turbo" in result.stdout.splitlines()
    assert ":20:16: warning: a literal api_key is in the config: written as ${env:LLM_KEY_GPT_3_5_TURBO}" in result.stderr
    assert ":23:5: error: model_name 'gpt-3.5-turbo' has several deployments" in result.stderr
    assert "The written models break rules" not in result.stderr
    # validate ran over the written files: its warnings and its verdict (stdout: valid).
    assert f"{out}/cohere.yaml:4:5: warning: no default embedding model" in result.stderr
    assert f"{out}: valid, 7 models in 6 files, 2 warnings" in result.stdout.splitlines()
    files = "".join(p.read_text() for p in out.iterdir())
    for secret in (LITERAL_KEY, "sk-Imn"):
        assert secret not in result.output and secret not in files
    assert "      context_window: 16385\n" in (out / "openai.yaml").read_text()  # from LiteLLM's model map
    validated = run_cli("validate", str(out))
    assert validated.exit_code == 0, validated.output


def test_import_of_a_config_that_imports_whole_exits_0(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: nomic-embed\n"
        "    litellm_params: {model: ollama/nomic-embed-text, api_base: 'http://ollama:11434'}\n"
        "    model_info: {mode: embedding, output_vector_size: 768}\n"
    )
    out = tmp_path / "registry.d"
    result = run_cli("import", "--from-litellm", str(config), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"Imported 1 of 1 deployment into {out}: ollama.yaml"
    assert f"{out}: valid, 1 model in 1 file, 1 warning" in result.stdout.splitlines()  # no default yet
    assert " error: " not in result.stderr


def test_import_refuses_what_is_not_a_litellm_config(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("general_settings:\n  master_key: sk-1234\n")
    result = run_cli("import", "--from-litellm", str(config), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"{config}:1:1: error: not a LiteLLM proxy config: expected a mapping with a 'model_list:' list"
    assert not (tmp_path / "out").exists()


def _base(params: dict[str, Any], provider: str, kind: str) -> str | None:
    return translate_endpoint(provider, kind, params.get("api_base"))


def test_import_then_export_gives_back_an_equivalent_config(run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "registry.d"
    assert run_cli("import", "--from-litellm", str(CONFIG), "--out", str(out)).exit_code == 1  # the errors of CONFIG
    exported = run_cli("export", "--format", "litellm", "--registry", str(out))
    assert exported.exit_code == 0, exported.output
    back = {entry["model_name"]: entry for entry in yaml.safe_load(exported.stdout)["model_list"]}
    original = {entry["model_name"]: entry for entry in yaml.safe_load(CONFIG.read_text())["model_list"]}
    renamed = {"claude-sonnet": "Claude Sonnet"}
    assert sorted(back) == sorted(["gpt-4-team1", "gpt-3.5-turbo", "gpt-4", "text-embedding-ada-002", "claude-sonnet", "embed-english", "gemini-embedding"])
    for name, entry in back.items():
        source = original[renamed.get(name, name)]
        params, before = entry["litellm_params"], source["litellm_params"]
        # Same model: LiteLLM's string, with ollama chat models on ollama_chat/ and the provider prefix written out.
        assert params["model"].split("/", 1)[1] == before["model"].split("/", 1)[-1]
        mode = entry["model_info"]["mode"]
        assert mode == source.get("model_info", {}).get("mode", mode)
        if "api_base" in before:
            provider = params["model"].split("/")[0].replace("ollama_chat", "ollama")
            assert params["api_base"] == translate_endpoint(provider, "embedding" if mode == "embedding" else "generation", before["api_base"])
        if str(before.get("api_key", "")).startswith("os.environ/"):
            assert params["api_key"] == before["api_key"]
        for key in ("api_version", "temperature", "max_tokens", "dimensions"):
            if key in before:
                assert params[key] == before[key], key


@pytest.fixture
def served_registry(tmp_path: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every provider and kind, as registry files on the fake provider; keys in KEY_<PROVIDER>."""
    models = []
    for provider, kind in CASES:
        model_id = f"{provider}-{kind}"
        needs_key = PROVIDER_MATRIX[provider]["api_key"] == "required"
        fake_provider.set_model(model_id, dimensions=8, api_key=CANARY_KEY if needs_key else None)
        model: dict[str, Any] = {
            "name": model_id, "type": kind, "provider": provider, "model_id": model_id,
            "api_endpoint": natural_endpoint(provider, fake_provider.url),
            "parameters": {"dimensions": 8} if kind == "embedding" else {"context_window": 8192, "max_output_tokens": 16},
        }  # fmt: skip
        if needs_key:
            model["api_key"] = f"${{env:KEY_{provider.upper()}}}"
            monkeypatch.setenv(f"KEY_{provider.upper()}", CANARY_KEY)
        if provider == "azure":
            model["api_version"] = "2024-02-01"
        models.append(model)
    models.append({**models[0], "name": "switched-off", "active": False})
    write_registry_file(tmp_path / "registry.d", models)
    return tmp_path / "registry.d"


def test_exported_config_answers_through_a_litellm_router(
    run_cli: RunCli, tmp_path: Path, served_registry: Path, fake_provider: FakeProvider
) -> None:
    from reconciler.connection import configured_litellm

    config_file = tmp_path / "litellm.yaml"
    result = run_cli("export", "--format", "litellm", "--registry", str(served_registry), "--out", str(config_file))
    assert result.exit_code == 0, result.output
    text = config_file.read_text()
    assert CANARY_KEY not in text and CANARY_KEY not in result.output
    model_list = yaml.safe_load(text)["model_list"]
    assert sorted(entry["model_name"] for entry in model_list) == sorted(f"{p}-{k}" for p, k in CASES)

    litellm = configured_litellm()
    router = litellm.Router(model_list=model_list, num_retries=0, timeout=10)
    for provider, kind in CASES:
        name = f"{provider}-{kind}"
        if kind == "embedding":
            response = router.embedding(model=name, input=["hello"], **({"encoding_format": "float"} if provider == "cohere" else {}))
            assert len(response.data[0]["embedding"]) == 8, name
        else:
            response = router.completion(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=1)
            assert response.choices, name
        assert fake_provider.request_count(name) == 1, name  # reached the fake with the key from the environment


@pytest.mark.db
def test_export_from_the_database_names_key_variables_by_convention(run_cli: RunCli, database_url: str, engine: Any) -> None:
    from tests.dbutil import insert_model

    with engine.begin() as connection:
        insert_model(connection, name="nomic-embed", managed_by=None)
        insert_model(connection, name="gpt-4o.mini", type="generation", provider="openai", model_id="gpt-4o-mini",
                     api_endpoint=None, api_key=CANARY_KEY, temperature=None)
        insert_model(connection, name="retired", is_active=False)  # fmt: skip
    result = run_cli("export", "--format", "litellm", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert CANARY_KEY not in result.output
    model_list = yaml.safe_load(result.stdout)["model_list"]
    assert model_list == [
        {
            "model_name": "gpt-4o.mini",
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "os.environ/LLM_KEY_GPT_4O_MINI", "max_tokens": 1024, "top_p": 1.0},
            "model_info": {"mode": "chat", "max_input_tokens": 8192},
        },
        {
            "model_name": "nomic-embed",
            "litellm_params": {"model": "ollama/nomic-embed-text", "api_base": "http://localhost:11434"},
            "model_info": {"mode": "embedding", "output_vector_size": 768},
        },
    ]
    assert result.stderr.endswith("Variables the proxy reads keys from: LLM_KEY_GPT_4O_MINI\n")
