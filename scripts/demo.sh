#!/usr/bin/env bash
# The whole flow on a fresh clone, with nothing but Python and the PostgreSQL binaries:
#   validate -> db upgrade -> plan -> apply (connection tests) -> plan (no changes) -> list -> audit -> report --html
#
# The database is the embedded default (a cluster of its own under ./.llm-registry/,
# on a Unix socket); providers are the local fake provider on 127.0.0.1, so no key
# or network is needed. Run it again and the second run finds nothing to do.
# `bash scripts/demo.sh --reset` starts from an empty registry.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
source scripts/venv.sh
install_into_venv .
run() { echo; echo "\$ llm-registry $*"; "$PY" -m reconciler "$@"; }

# Without PostgreSQL's server binaries, say how to get them before doing anything.
"$PY" -c 'from reconciler.embedded import require_postgres_binaries; require_postgres_binaries()' || exit 1

unset LLM_REGISTRY_DATABASE_URL   # the demo uses the embedded default,
export LLM_REGISTRY_EMBEDDED=1      # on purpose (in CI a missing URL is otherwise an error)
HOME_DIR="${LLM_REGISTRY_HOME:-.llm-registry}"   # where the embedded cluster lives too
if [ "${1:-}" = "--reset" ]; then
    "$PY" -m reconciler db stop >/dev/null 2>&1 || true
    rm -rf "$HOME_DIR"
fi
mkdir -p "$HOME_DIR"

# The fake provider on a free port, answering each embedding model with its declared
# dimensions; stopped when the demo ends.
# The port is remembered, so that a second run points at the same URL and finds
# nothing to change.
url_file="$HOME_DIR/fake-provider.url"
port_file="$HOME_DIR/fake-provider.port"
port="$(cat "$port_file" 2>/dev/null || echo 0)"
(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && port=0   # taken by something else
rm -f "$url_file"
# shellcheck disable=SC2046
"$PY" -m tests.fakes.provider --port "$port" $("$PY" scripts/demo_registry.py flags registry.d) >"$url_file" 2>/dev/null &
fake_pid=$!
trap 'kill $fake_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$url_file" ] && break; sleep 0.1; done
FAKE_URL="$(head -n1 "$url_file")"
[ -n "$FAKE_URL" ] || { echo "error: the fake provider did not start" >&2; exit 1; }
echo "${FAKE_URL##*:}" >"$port_file"

# The example registry, every endpoint pointed at the fake provider.
DEMO_DIR="$HOME_DIR/demo/registry.d"
"$PY" scripts/demo_registry.py copy registry.d "$DEMO_DIR" "$FAKE_URL"

export LLM_REGISTRY_ENCRYPTION_KEY="demo-passphrase-not-for-production"
export OPENAI_API_KEY="demo-openai-key" AZURE_OPENAI_API_KEY="demo-azure-key" GEMINI_API_KEY="demo-gemini-key"
export ANTHROPIC_API_KEY="demo-anthropic-key" COHERE_API_KEY="demo-cohere-key"

echo "Fake provider: $FAKE_URL    Registry: $DEMO_DIR (a copy of registry.d)"
run validate "$DEMO_DIR"
run db upgrade
set +e
run plan "$DEMO_DIR"; code=$?
set -e
[ "$code" -eq 0 ] || { echo "error: plan exited $code" >&2; exit "$code"; }
run apply "$DEMO_DIR" --auto-approve
run plan "$DEMO_DIR" --detailed-exitcode
run list
run audit
run report --html "$HOME_DIR/registry.html"
echo
CLI="$(dirname "$PY")/llm-registry"   # the venv's command: not on PATH unless the venv is activated
echo "Done. The registry lives in the embedded database under $HOME_DIR/ (stop it: $CLI db stop)."
echo "See it in a browser: open $HOME_DIR/registry.html, or run $CLI serve (http://127.0.0.1:8080/)."
