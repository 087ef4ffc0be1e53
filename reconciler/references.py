"""Trust rules for what a registry file may point at: variables and endpoints.

A registry file is written by whoever can open a pull request, and `apply` (with
the connection tests) runs it where CI's and the tool's own secrets live. So a file
may reference only variables meant for it, and an endpoint may not carry
credentials of its own. `validate` reports a breach at `file:line:column`; `apply`
checks the references again (a plan file does not go through `validate`).

Refused variable names (docs/security.md gives the reasons):

* the tool's own: `LLM_REGISTRY_*` (the encryption passphrase, the database URL);
* CI's: `GITHUB_*` (GITHUB_TOKEN), `ACTIONS_*` (runtime and OIDC tokens),
  `RUNNER_*`, `CI_*` (GitLab's CI_JOB_TOKEN and friends), `GITLAB_*`;
* database credentials: anything naming a database URL or DSN
  (`DATABASE_URL`, `*_DATABASE_URL`, `*_DB_URL`, `*_DSN`), and libpq's `PG*`;
* cloud account credentials: `AWS_*` (access keys, session tokens),
  `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_GHA_CREDS_PATH`, `CLOUDSDK_*`,
  `AZURE_CLIENT_SECRET`, `AZURE_CLIENT_CERTIFICATE_*`, `AZURE_FEDERATED_TOKEN_FILE`,
  `ARM_*`. Provider keys named after a cloud (`AZURE_OPENAI_API_KEY`,
  `GOOGLE_API_KEY`) stay allowed.

On top of that an administrator may set `LLM_REGISTRY_KEY_VARIABLES` to a list of
glob patterns (`OPENAI_*,AZURE_OPENAI_*`): then a reference must match one of them.
The refused names stay refused whatever the allow-list says.

Pure: no I/O; the caller passes the allow-list.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any, Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

KEY_VARIABLES_ENV = "LLM_REGISTRY_KEY_VARIABLES"
_NOT_ALLOWED = f"not in {KEY_VARIABLES_ENV}"  # how a reason outside the allow list starts

# (glob, why) in the order they are checked; the first match names the reason.
_REFUSED: tuple[tuple[str, str], ...] = (
    ("LLM_REGISTRY_*", "llm-registry's own configuration (passphrase, database URL)"),
    ("GITHUB_*", "a GitHub Actions variable (GITHUB_TOKEN can write to the repository)"),
    ("ACTIONS_*", "a GitHub Actions runtime token"),
    ("RUNNER_*", "a CI runner variable"),
    ("CI_*", "a CI variable (CI_JOB_TOKEN)"),
    ("GITLAB_*", "a GitLab CI variable"),
    ("*DATABASE_URL*", "a database URL, which holds its password"),
    ("*DB_URL", "a database URL, which holds its password"),
    ("*_DSN", "a database connection string"),
    ("PG*", "a PostgreSQL client (libpq) variable"),
    ("AWS_*", "AWS account credentials"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "Google Cloud account credentials"),
    ("GOOGLE_GHA_CREDS_PATH", "Google Cloud account credentials"),
    ("CLOUDSDK_*", "Google Cloud SDK configuration"),
    ("AZURE_CLIENT_SECRET", "Azure account credentials"),
    ("AZURE_CLIENT_CERTIFICATE_*", "Azure account credentials"),
    ("AZURE_FEDERATED_TOKEN_FILE", "Azure account credentials"),
    ("ARM_*", "Azure account credentials"),
    ("GH_*", "the GitHub CLI's token (GH_TOKEN)"),
    ("SYSTEM_ACCESSTOKEN", "an Azure Pipelines token"),
    ("BUILDKITE_*", "a Buildkite variable"),
    ("CIRCLE_*", "a CircleCI variable"),
    ("TRAVIS_*", "a Travis CI variable"),
    ("JENKINS_*", "a Jenkins variable"),
    ("BITBUCKET_*", "a Bitbucket Pipelines variable"),
    ("VAULT_*", "a HashiCorp Vault token or address"),
    ("GOOGLE_CREDENTIALS", "Google Cloud account credentials"),
    ("NPM_*", "a package registry token"),
    ("PYPI_*", "a package registry token"),
    ("TWINE_*", "a package registry token"),
    ("DOCKER_*", "container registry credentials"),
    ("SSH_*", "an SSH key or agent"),
    ("*PRIVATE_KEY*", "a private key"),
    ("*PASSWORD*", "a password"),
    ("*PASSWD*", "a password"),
    ("*DATABASE_URI*", "a database URL, which holds its password"),
    ("*DB_URI", "a database URL, which holds its password"),
)

# Words of a query parameter's name that say it carries a credential (accessToken, api_key,
# X-Api-Key, token[], sig): an endpoint must not embed one.
_CREDENTIAL_PARAMETER_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "sig", "signature", "auth",
     "authorization", "credential", "credentials", "jwt", "bearer", "session", "sessionid"}
)


def parse_allow_list(value: str | None) -> tuple[str, ...]:
    """The glob patterns of `LLM_REGISTRY_KEY_VARIABLES` (comma or space separated); () when unset."""
    if not value:
        return ()
    return tuple(part for part in re.split(r"[\s,]+", value.strip()) if part)


# What in a variable's name says it holds a credential: these anywhere (OPENAIKEY too), and
# the short ones only as a word between underscores (PATH and COMPAT are no credentials).
_CREDENTIAL_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_CREDENTIAL_WORDS = frozenset({"PWD", "PAT", "AUTH"})


def _names_a_credential(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in _CREDENTIAL_PARTS) or bool(_CREDENTIAL_WORDS.intersection(upper.split("_")))


def refused_variable(name: str, allow_list: Iterable[str] = (), *, field: str = "api_key") -> str | None:
    """Why a registry may not reference the variable `name` in `field`, or None when it may.

    Names are compared as written (environment variables are case-sensitive on the
    platforms CI runs on), and also upper-cased, so that `github_token` is no way round.
    `api_endpoint` and `api_version` are configuration, resolved at plan time and
    printed in plans and PR comments, stored and audited in clear: a variable whose
    name says it holds a credential (`OPENAI_API_KEY`, `*_TOKEN`, ...) is refused there.
    The allow-list (`LLM_REGISTRY_KEY_VARIABLES`) is about keys: it applies to `api_key` only.
    """
    reason = _refused_variable(name, tuple(allow_list) if field == "api_key" else ())
    if reason is None and field != "api_key" and _names_a_credential(name):
        return f"its name says it holds a credential, and {field} is printed in plans and stored in clear"
    return reason


@functools.lru_cache(maxsize=4096)
def _refused_variable(name: str, patterns: tuple[str, ...]) -> str | None:
    # Cached: a registry of 10,000 models references a handful of variables, and
    # matching each reference against every pattern was a tenth of `plan`'s time.
    upper = name.upper()
    for pattern, why in _REFUSED:
        if fnmatch.fnmatchcase(upper, pattern):
            return f"{why}"
    if patterns and not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
        return f"{_NOT_ALLOWED} ({', '.join(patterns)})"
    return None


def refused_variable_message(field: str, name: str, reason: str) -> str:
    """The message for a refused reference: names the variable and why, never its value."""
    if reason.startswith(_NOT_ALLOWED):  # an example name could be outside the allow list too
        advice = f"Reference a variable whose name matches one of {KEY_VARIABLES_ENV}'s patterns"
    elif field == "api_endpoint":
        advice = "Reference a variable that holds only the URL (e.g. AZURE_OPENAI_ENDPOINT)"
    elif field == "api_version":
        advice = "Reference a variable that holds only the version (e.g. AZURE_OPENAI_API_VERSION)"
    else:
        advice = "Reference a variable that holds only this model's key (e.g. OPENAI_API_KEY)"
    return f"{field}: ${{env:{name}}} may not be referenced by a registry: {reason}. {advice}"


def _is_credential_parameter(name: str) -> bool:
    """Whether a query parameter's name (percent-decoded) reads as a credential, by its words:
    split at anything not a letter or digit and at camelCase humps."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", unquote_plus(name))
    return any(word in _CREDENTIAL_PARAMETER_WORDS for word in re.split(r"[^a-z0-9]+", spaced.lower()))


# One `name=value` of a query string or fragment, with the separator before it.
_PARAMETER = re.compile(r"(^|[&;])([^&;=]*)=([^&;]*)")


def _parameters(text: str) -> list[tuple[str, str]]:
    """`name=value` pairs of a query string or fragment, split at `&` and at `;` (both are used)."""
    pairs = []
    for part in re.split(r"[&;]", text):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def endpoint_credentials_problem(endpoint: str) -> str | None:
    """Why an `api_endpoint` carries credentials (user:password@host, ?key=..., #access_token=...), else None.

    The message never repeats the URL or any part of the credentials.
    """
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return None  # not a URL at all: the format check reports it
    if "@" in parts.netloc:
        return (
            "api_endpoint holds credentials (user:password@ before the host); remove them: "
            "a key belongs in api_key as ${env:NAME}, and the endpoint is shown in plans and audit records"
        )
    for where, text in (("query string", parts.query), ("fragment", parts.fragment)):
        for parameter, _ in _parameters(text):
            if _is_credential_parameter(parameter):
                shown = re.sub(r"[^A-Za-z0-9_.\-\[\]]", "?", unquote_plus(parameter))[:40]
                return (
                    f"api_endpoint holds a credential in its {where} (parameter {shown!r}); remove it: "
                    "a key belongs in api_key as ${env:NAME}"
                )
    return None


def redact_endpoint(endpoint: Any) -> Any:
    """An endpoint as it may be shown or recorded: credentials (userinfo, credential query values) as `***`.

    For endpoints read from the database (a row made by hand may hold
    `http://user:password@host`); anything that is not such a URL string comes back as is.
    """
    if not isinstance(endpoint, str) or endpoint_credentials_problem(endpoint) is None:
        return endpoint
    parts = urlsplit(endpoint)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]

    def redacted(text: str) -> str:
        # Only the values of credential parameters change; separators and other parts stay as written.
        return _PARAMETER.sub(lambda m: f"{m[1]}{m[2]}=***" if _is_credential_parameter(m[2]) else m[0], text)

    return urlunsplit((parts.scheme, netloc, parts.path, redacted(parts.query), redacted(parts.fragment)))
