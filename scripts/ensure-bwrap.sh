#!/usr/bin/env sh
# Make sure bubblewrap (the default sandbox) is installed and can start a sandbox.
# Installs it with apt-get when running as root; otherwise says how.
set -u
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing bubblewrap (apt-get)..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
            || { echo "apt-get could not install bubblewrap" >&2; exit 0; }
    else
        echo "bubblewrap is not installed: run 'sudo apt-get install bubblewrap'" >&2
        echo "(sandbox tests will be skipped; 'subterfuge' needs it or --sandbox plain)" >&2
        exit 0
    fi
fi
if ! bwrap --ro-bind / / --unshare-all --unshare-user --die-with-parent true 2>/tmp/bwrap-check.$$; then
    echo "bubblewrap is installed but cannot create namespaces here:" >&2
    cat /tmp/bwrap-check.$$ >&2
    echo "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)" >&2
fi
rm -f /tmp/bwrap-check.$$
