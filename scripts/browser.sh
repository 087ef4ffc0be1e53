#!/usr/bin/env bash
# Make sure the browser tests (tests/cli/test_page_browser.py) have a browser: Chromium
# and its ChromeDriver. Idempotent and quiet; returns at once when both are there
# (Debian's chromium + chromium-driver, or Google Chrome + chromedriver as CI images ship).
# Installs Debian's packages when it can (root and apt-get); otherwise it says so and
# the browser tests skip with that reason. Never fails the caller.
# LLM_REGISTRY_NO_BROWSER_INSTALL=1 skips the install.
set -uo pipefail

have_browser() {
    { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1 &&
        command -v chromedriver >/dev/null 2>&1
}

have_browser && exit 0
[ -n "${LLM_REGISTRY_NO_BROWSER_INSTALL:-}" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no Chromium/ChromeDriver and no way to install them here (needs root and apt-get): the browser tests will be skipped" >&2
    exit 0
fi

log="$(mktemp)"
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 chromium chromium-driver fonts-dejavu-core >>"$log" 2>&1
}
# Try the package lists as they are first: an update is the slow part.
if ! install; then
    apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$log" 2>&1
    install
fi
if ! have_browser; then
    echo "note: installing chromium and chromium-driver failed: the browser tests will be skipped" >&2
    tail -n 5 "$log" >&2
fi
rm -f "$log"
exit 0
