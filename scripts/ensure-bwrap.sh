#!/usr/bin/env sh
# Make sure bubblewrap (the default sandbox) is installed and can start a sandbox.
# Installs it with apt-get when running as root; otherwise says how. Also installs
# Debian's bash-static where it can: optional, sandboxes then run the same bash
# statically linked, which starts and forks faster (src/subterfuge/sandbox/static_bash.py).
set -u
root=no
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    root=yes
fi
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$root" = "yes" ]; then
        echo "installing bubblewrap and bash-static (apt-get)..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
            || { echo "apt-get could not install bubblewrap" >&2; exit 0; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bash-static >/dev/null 2>&1 || true
    else
        echo "bubblewrap is not installed: run 'sudo apt-get install bubblewrap'" >&2
        echo "(sandbox tests will be skipped; 'subterfuge' needs it or --sandbox plain)" >&2
        exit 0
    fi
elif [ ! -x /usr/bin/bash-static ] && [ "$root" = "yes" ] && [ ! -e .venv/.no-bash-static ]; then
    # Tried once per venv, from the package lists already there: no 'apt-get update'
    # and short network timeouts for an optional package.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Acquire::http::Timeout=10 -o Acquire::Retries=0 bash-static >/dev/null 2>&1 \
        || { echo "(bash-static not installed: sandboxes use the dynamic bash, a little slower)" >&2;
             mkdir -p .venv && touch .venv/.no-bash-static; }
fi
if ! bwrap --ro-bind / / --unshare-all --unshare-user --die-with-parent true 2>/tmp/bwrap-check.$$; then
    echo "bubblewrap is installed but cannot create namespaces here:" >&2
    cat /tmp/bwrap-check.$$ >&2
    echo "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)" >&2
fi
rm -f /tmp/bwrap-check.$$
