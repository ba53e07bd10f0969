#!/usr/bin/env sh
# Make sure Debian's chromium and chromium-driver are installed for the viewer's browser tests
# (Selenium drives them; Playwright's own browser download cannot be reached from here).
# Installs them with apt-get when running as root; otherwise says why the tests will skip.
set -u
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing (apt-get) for the viewer's browser tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
        || echo "apt-get could not install$missing: the viewer's browser tests will be skipped" >&2
else
    echo "not installed:$missing. Run 'sudo apt-get install chromium chromium-driver'" >&2
    echo "(not root, so not installed here: the viewer's browser tests will be skipped)" >&2
fi
exit 0
