"""LiteLLM proxy configs both ways, pure: model_list -> registry definitions (with line-numbered reports) and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.diagnostics import format_text
from reconciler.export import ExportModel
from reconciler.litellm_config import export_litellm, import_litellm, litellm_entry, registry_name
from reconciler.load import load_file
from reconciler.spec import MODEL_ADAPTER, desired_record
from tests.factories import embedding_model, generation_model

CONFIG = Path(__file__).parent.parent / "cases" / "litellm" / "proxy-config.yaml"
# What LiteLLM's model map says of the models the config leaves without sizes.
KNOWN = {"gpt-3.5-turbo": {"mode": "chat", "max_input_tokens": 16385}, "azure/gpt-4o": {"mode": "chat", "max_input_tokens": 128000}}
LITERAL_KEY = "sk-literal-canary-0123456789abcdef"


def _imported() -> Any:
    document, problems = load_file(CONFIG, "proxy-config.yaml")
    assert document is not None and problems == []
    return import_litellm(document, lambda model: KNOWN.get(model, {}))


def test_every_mappable_deployment_becomes_a_valid_definition() -> None:
    result = _imported()
    by_name = {m.definition["name"]: m for m in result.models}
    assert list(by_name) == [
        "gpt-4-team1", "gpt-3.5-turbo", "gpt-4", "text-embedding-ada-002", "claude-sonnet", "embed-english", "gemini-embedding",
    ]
    assert result.deployments == 11
    for imported in result.models:
        MODEL_ADAPTER.validate_python(dict(imported.definition))  # raises if a definition is invalid
    assert by_name["gpt-4-team1"].definition == {
        "name": "gpt-4-team1", "type": "generation", "provider": "azure", "model_id": "chatgpt-v-2",
        "api_endpoint": "https://openai-gpt-4-test-v-1.openai.azure.com", "api_version": "2023-05-15",
        "api_key": "${env:AZURE_API_KEY}", "parameters": {"context_window": 128000},
    }
    assert by_name["gpt-4"].definition["parameters"] == {"context_window": 4096, "max_output_tokens": 20, "temperature": 0.1}
    assert by_name["gpt-4"].definition["provider"] == "ollama" and "api_key" not in by_name["text-embedding-ada-002"].definition
    assert by_name["gemini-embedding"].definition["parameters"] == {"dimensions": 256}
    assert by_name["gpt-3.5-turbo"].key_variable == "LLM_KEY_GPT_3_5_TURBO"


def test_what_cannot_be_mapped_is_reported_at_its_line_and_a_literal_key_never_shown() -> None:
    lines = [format_text(d) for d in sorted(_imported().diagnostics, key=lambda d: d.sort_key())]
    assert lines == [
        "proxy-config.yaml:4:5: warning: model 'gpt-4-team1': max_retries, stream_timeout, timeout, tpm have no place in the registry; left out",
        "proxy-config.yaml:17:5: warning: model 'gpt-3.5-turbo': rpm, tpm have no place in the registry; left out",
        "proxy-config.yaml:20:16: warning: a literal api_key is in the config: written as ${env:LLM_KEY_GPT_3_5_TURBO}; "
        "set that variable to the key and take the key out of the config",
        "proxy-config.yaml:23:5: error: model_name 'gpt-3.5-turbo' has several deployments (first at line 17): "
        "a registry model is one deployment; this one is not imported",
        "proxy-config.yaml:29:14: error: 'openrouter/mistralai/mistral-7b-instruct': not a provider the registry serves "
        "(ollama, openai, azure, gemini, anthropic, cohere); not imported",
        "proxy-config.yaml:41:14: warning: 'ollama/nomic-embed-text': no model_info.mode; taken as embedding from its name "
        "(set mode: embedding or chat to be sure)",
        "proxy-config.yaml:43:7: warning: ollama takes no api_key; left out",
        "proxy-config.yaml:46:17: warning: model_name 'Claude Sonnet' becomes registry name 'claude-sonnet'",
        "proxy-config.yaml:71:13: error: 'openai/dall-e-3': mode 'image_generation' is not embedding or generation; not imported",
        "proxy-config.yaml:72:5: error: wildcard route '*' -> 'openai/*' has no place in the registry; not imported",
        "proxy-config.yaml:78:3: warning: litellm_settings.fallbacks: LiteLLM routing has no place in the registry (one model per name); not imported",
        "proxy-config.yaml:82:3: warning: router_settings.routing_strategy: LiteLLM routing has no place in the registry (one model per name); not imported",
        "proxy-config.yaml:83:3: warning: router_settings.model_group_alias: LiteLLM routing has no place in the registry (one model per name); not imported",
    ]
    assert all(LITERAL_KEY not in line and "sk-Imn" not in line for line in lines)


def test_registry_names() -> None:
    assert registry_name("GPT 4o / EU") == "gpt-4o-eu" and registry_name("--x") == "x"


def _export_model(definition: dict[str, Any], key_variable: str | None = None) -> ExportModel:
    return ExportModel(definition["name"], desired_record(MODEL_ADAPTER.validate_python(definition)), key_variable)


def test_export_entry_carries_model_string_base_key_variable_and_parameters() -> None:
    entry = litellm_entry(_export_model(generation_model(name="g", api_endpoint="https://api.openai.com", parameters={"top_k": 5}), "OPENAI_API_KEY"))
    assert entry == {
        "model_name": "g",
        "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": "https://api.openai.com/v1", "api_key": "os.environ/OPENAI_API_KEY",
            "max_tokens": 4096, "temperature": 0.7, "top_p": 1.0, "top_k": 5,
        },
        "model_info": {"mode": "chat", "max_input_tokens": 128000},
    }
    embedding = litellm_entry(_export_model(embedding_model(name="e", description="local")))
    assert embedding == {
        "model_name": "e",
        "litellm_params": {"model": "ollama/nomic-embed-text", "api_base": "http://localhost:11434"},
        "model_info": {"mode": "embedding", "output_vector_size": 768, "description": "local"},
    }


def test_export_holds_active_models_only_sorted() -> None:
    models = [_export_model(embedding_model(name="b")), _export_model(embedding_model(name="a")), _export_model(embedding_model(name="c", active=False))]
    assert [entry["model_name"] for entry in export_litellm(models).config["model_list"]] == ["a", "b"]


def test_environment_references_and_an_azure_deployment_named_after_its_model(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4\n"
        "    litellm_params:\n"
        "      model: azure/gpt-4\n"
        "      api_base: os.environ/AZURE_API_BASE\n"
        "      api_key: os.environ/AZURE_API_KEY\n"
        '      api_version: "2024-02-01"\n'
        "    model_info:\n"
        "      mode: chat\n"
    )
    document, _ = load_file(config, "config.yaml")
    assert document is not None
    asked: list[str] = []

    def lookup(model: str) -> dict[str, Any]:
        asked.append(model)
        return {"max_input_tokens": 8192} if model == "gpt-4" else {}

    (imported,) = import_litellm(document, lookup).models
    assert asked == ["azure/gpt-4", "gpt-4"]
    assert imported.definition["api_endpoint"] == "${env:AZURE_API_BASE}"
    assert imported.definition["api_key"] == "${env:AZURE_API_KEY}" and imported.key_variable == "AZURE_API_KEY"
    assert imported.definition["parameters"] == {"context_window": 8192}
    assert (imported.location.line, imported.location.column) == (2, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model_list: {}\n", "1:1: error: not a LiteLLM proxy config: expected a mapping with a 'model_list:' list"),
        ("model_list:\n  - just-a-name\n", "2:5: error: a model_list entry needs model_name and litellm_params; not imported"),
        ("model_list:\n  - model_name: x\n    litellm_params: {model: 7}\n",
         "2:5: error: a model_list entry needs model_name and litellm_params.model (strings); not imported"),
        ("model_list:\n  - model_name: '!!!'\n    litellm_params: {model: openai/gpt-4o}\n",
         "2:17: error: model_name '!!!' cannot be made a registry name; not imported"),
        ("model_list:\n  - model_name: e\n    litellm_params: {model: ollama/nomic-embed-text}\n    model_info: {mode: embedding}\n",
         "2:5: error: embedding model without a known vector size: add litellm_params.dimensions or model_info.output_vector_size; not imported"),
        ("model_list:\n  - model_name: e\n    litellm_params: {model: anthropic/claude-x}\n    model_info: {mode: embedding}\n",
         "3:29: error: anthropic does not serve embedding models; not imported"),
    ],
)
def test_entries_that_cannot_be_read_are_reported_at_their_place(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    document, _ = load_file(config, "c.yaml")
    assert document is not None
    result = import_litellm(document)
    assert result.models == () and [format_text(d) for d in result.diagnostics] == [f"c.yaml:{expected}"]
