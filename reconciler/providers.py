"""Per-provider facts, in one place: what each provider serves and needs, and how LiteLLM names it.

The provider matrix of DESIGN.md (which model types a provider serves, whether it
takes a key and an endpoint), the LiteLLM model strings and the endpoint rules
LiteLLM expects live here and nowhere else. `spec`/`validate` read the matrix,
`connection` builds requests from the LiteLLM rules. Pure data and pure functions:
importing this module costs nothing.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Literal
from urllib.parse import urlsplit, urlunsplit

PROVIDERS: tuple[str, ...] = ("ollama", "openai", "azure", "gemini", "anthropic", "cohere")
Provider = Literal["ollama", "openai", "azure", "gemini", "anthropic", "cohere"]

# What the admin form of the original story showed, now enforced by `validate`.
#   types: which model types the provider serves
#   api_key / api_endpoint: "required", "optional" or "forbidden"
PROVIDER_MATRIX: dict[str, dict[str, Any]] = {
    "ollama": {"types": ("embedding", "generation", "ner"), "api_key": "forbidden", "api_endpoint": "required"},
    "openai": {"types": ("embedding", "generation", "ner"), "api_key": "required", "api_endpoint": "optional"},
    "azure": {"types": ("embedding", "generation", "ner"), "api_key": "required", "api_endpoint": "required"},
    "gemini": {"types": ("embedding", "generation", "ner"), "api_key": "required", "api_endpoint": "optional"},
    "anthropic": {"types": ("generation", "ner"), "api_key": "required", "api_endpoint": "optional"},
    "cohere": {"types": ("embedding", "generation", "ner"), "api_key": "required", "api_endpoint": "optional"},
}
# Providers whose API has no top_k sampling parameter: accepted, but warned about.
PROVIDERS_WITHOUT_TOP_K: tuple[str, ...] = ("openai", "azure")
# Providers that need a key (derived from the matrix).
KEY_REQUIRED: frozenset[str] = frozenset(p for p, rules in PROVIDER_MATRIX.items() if rules["api_key"] == "required")

# Prefixes of the environment variables LiteLLM and the providers' SDKs fall back to when a
# call passes no key or base URL of its own (OLLAMA_API_KEY, OPENAI_BASE_URL, CO_API_KEY, ...).
# Connection tests hide them: a test sends what its definition names, nothing else.
PROVIDER_ENVIRONMENT_PREFIXES: tuple[str, ...] = ("OLLAMA_", "OPENAI_", "AZURE_", "GEMINI_", "GOOGLE_", "ANTHROPIC_", "COHERE_", "CO_")

# Where LiteLLM goes when no endpoint is given, for messages only.
DEFAULT_ENDPOINTS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
    "anthropic": "https://api.anthropic.com",
    "cohere": "https://api.cohere.com",
    "ollama": "http://localhost:11434",
}


def _split_path(url: str) -> tuple[str, str]:
    """(scheme://netloc, path without trailing slash)."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")), parts.path.rstrip("/")


def _strip_suffixes(path: str, suffixes: Iterable[str]) -> str:
    for suffix in suffixes:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


_VERSION_SEGMENT = re.compile(r"/v\d+(?:beta\d*|alpha\d*)?$")


def translate_endpoint(provider: str, model_type: str, endpoint: str | None) -> str | None:
    """Turn the base URL an admin writes into the `api_base` LiteLLM needs for this provider.

    - openai: LiteLLM appends `/embeddings` or `/chat/completions`, so the base must
      end in the API version (`/v1`); added unless a version segment is there.
    - gemini: likewise `/v1beta`.
    - anthropic: LiteLLM appends `/v1/messages`, so a trailing `/v1` is removed.
    - cohere: LiteLLM posts to `api_base` as given: the full `/v2/embed` or `/v2/chat`.
    - azure: LiteLLM appends `/openai/deployments/...`: the resource URL, without `/openai`.
    - ollama: LiteLLM appends `/api/embed` or `/api/chat`: the server URL, without `/api`.

    A full endpoint pasted by mistake (`.../v1/chat/completions`) is cut back to its
    base. None stays None (LiteLLM's default) except for Cohere, where the default
    would otherwise be the legacy host.
    """
    if endpoint is None or not endpoint.strip():
        if provider == "cohere":
            endpoint = DEFAULT_ENDPOINTS["cohere"]
        else:
            return None
    origin, path = _split_path(endpoint)
    if provider == "openai":
        path = _strip_suffixes(path, ("/chat/completions", "/embeddings"))
        if not _VERSION_SEGMENT.search(path):
            path += "/v1"
    elif provider == "gemini":
        path = re.sub(r"/models/[^/]*$", "", path)
        path = re.sub(r"/models$", "", path)
        if not _VERSION_SEGMENT.search(path):
            path += "/v1beta"
    elif provider == "anthropic":
        path = _strip_suffixes(path, ("/v1/messages", "/messages"))
        path = _strip_suffixes(path, ("/v1",))
    elif provider == "cohere":
        path = _strip_suffixes(path, ("/embed", "/chat"))
        path = _strip_suffixes(path, ("/v1", "/v2"))
        path += "/v2/embed" if model_type == "embedding" else "/v2/chat"
    elif provider == "azure":
        path = re.sub(r"/openai(?:/deployments(?:/.*)?)?$", "", path)
    elif provider == "ollama":
        path = _strip_suffixes(path, ("/api/embed", "/api/embeddings", "/api/chat", "/api/generate"))
        path = _strip_suffixes(path, ("/api",))
    return origin + path


def litellm_model(provider: str, model_type: str, model_id: str) -> str:
    """The `provider/model` string LiteLLM routes on.

    Ollama generation goes through `ollama_chat/`: the `ollama/` (generate) route
    reports an empty reply as success, which would make a broken model pass.
    """
    if provider == "ollama":
        return f"ollama/{model_id}" if model_type == "embedding" else f"ollama_chat/{model_id}"
    if provider == "gemini" and model_id.startswith("models/"):
        model_id = model_id[len("models/") :]  # LiteLLM adds `models/` itself
    return f"{provider}/{model_id}"


# --------------------------------------------------------------------------------------
# LiteLLM proxy configs (`model_list`): how its model strings and defaults map to ours.
# --------------------------------------------------------------------------------------

# LiteLLM's provider prefix -> our provider. `ollama_chat` and `cohere_chat` are
# LiteLLM routes to the same providers (chat endpoints).
LITELLM_PREFIXES: dict[str, str] = {
    "openai": "openai",
    "azure": "azure",
    "gemini": "gemini",
    "anthropic": "anthropic",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "ollama": "ollama",
    "ollama_chat": "ollama",
}
# A model string without a prefix: LiteLLM infers the provider from the name.
_UNPREFIXED = (
    (re.compile(r"^(gpt-|o[1-9]|chatgpt-|text-embedding-|davinci|babbage)"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^(command|embed-)"), "cohere"),
)
# The variable LiteLLM reads a provider's key from when the config gives none.
LITELLM_KEY_VARIABLES: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "cohere": "COHERE_API_KEY",
}
# Likewise for Azure's endpoint and API version.
LITELLM_AZURE_BASE_VARIABLE = "AZURE_API_BASE"
LITELLM_AZURE_VERSION_VARIABLE = "AZURE_API_VERSION"


def provider_from_litellm(model: str) -> tuple[str, str] | None:
    """(provider, model_id) for a LiteLLM model string such as `azure/my-deployment`; None if not ours.

    `ollama_chat/llama3` is ollama's `llama3`; an unprefixed `gpt-4o` is openai's, as
    LiteLLM infers it. Providers we do not serve (bedrock, vertex_ai, openrouter, ...)
    give None.
    """
    prefix, slash, rest = model.partition("/")
    if slash:
        provider = LITELLM_PREFIXES.get(prefix)
        return (provider, rest) if provider and rest else None
    for pattern, provider in _UNPREFIXED:
        if pattern.match(model):
            return provider, model
    return None


# --------------------------------------------------------------------------------------
# Embedding models that produce vectors of a requested size.
# --------------------------------------------------------------------------------------

_SIZED_EMBEDDINGS: dict[str, Callable[[str], bool]] = {
    # OpenAI: text-embedding-3-* and later; ada-002 refuses `dimensions`.
    "openai": lambda model_id: "text-embedding-3" in model_id,
    # Azure: a deployment's name need not say its model; ada-002 is the one Azure
    # embedding model without sizes, so every deployment not named after it is asked.
    "azure": lambda model_id: "ada" not in model_id.lower(),
    # Gemini: text-embedding-004 and gemini-embedding-* take outputDimensionality; the
    # legacy embedding-001 does not.
    "gemini": lambda model_id: "embedding-001" not in model_id or "gemini-embedding" in model_id,
    # Cohere: embed-v4.0 and later take output_dimension; v3 models have one fixed size.
    "cohere": lambda model_id: bool(re.search(r"embed-v(?:[4-9]|\d\d)", model_id)),
}


def requests_dimensions(provider: str, model_id: str) -> bool:
    """True when the embedding model returns vectors of the size a request asks for.

    The connection test and `export --format litellm` then send the declared
    `dimensions` (LiteLLM maps it to each provider's field). Ollama and Anthropic: never.
    """
    rule = _SIZED_EMBEDDINGS.get(provider)
    return bool(rule and rule(model_id))
