# shellcheck shell=bash
# Sourced by test.sh and demo.sh: make the virtualenv ($LLM_REGISTRY_VENV, default
# .venv) and install this checkout into it; sets PY to its python. Fails loudly.
install_into_venv() {
    local spec="$1"
    VENV="${LLM_REGISTRY_VENV:-.venv}"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    local log
    log="$(mktemp)"
    if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "error: installing llm-registry ($spec) failed (see above)" >&2
        exit 1
    fi
    rm -f "$log"
    # shellcheck disable=SC2034 # PY is for the scripts that source this file
    PY="$VENV/bin/python"
}
