#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 and install the pinned requirements into it.
# Usage: scripts/bootstrap.sh [base|test]   (default: base). Safe to run again: it reinstalls only
# when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-base}"
venv=".venv"

is_new_enough() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.13 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && is_new_enough "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    # pyenv's interpreters answer by full path even when its shims do not select them.
    local root="${PYENV_ROOT:-$HOME/.pyenv}"
    if command -v pyenv >/dev/null 2>&1; then root="$(pyenv root)"; fi
    if [ -d "$root/versions" ]; then
        for candidate in $(ls -1 "$root/versions" | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -t. -k1,1n -k2,2nr -k3,3nr); do
            if is_new_enough "$root/versions/$candidate/bin/python3"; then
                echo "$root/versions/$candidate/bin/python3"
                return 0
            fi
        done
    fi
    return 1
}

if [ ! -x "$venv/bin/python" ] || ! is_new_enough "$venv/bin/python"; then
    if ! python="$(find_python)"; then
        echo "error: no Python >= 3.12 found (tried \$PYTHON, python3.13, python3.12, python3 and pyenv's versions)." >&2
        echo "Install Python 3.12 or newer, or point PYTHON at one: PYTHON=/path/to/python3.12 make run" >&2
        exit 1
    fi
    echo "Creating $venv with $python ($("$python" --version))"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

stamp="$venv/.requirements-$profile"
wanted="$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installing pinned requirements ($profile)…"
    log="$(mktemp)"
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "requirements/$profile.txt" -c requirements/constraints.txt >"$log" 2>&1; then
        # Some machines carry pip find-links to absent folders; their warnings are noise.
        grep -v "^WARNING: Location" "$log" >&2
        rm -f "$log"
        echo "error: installing requirements/$profile.txt failed" >&2
        exit 1
    fi
    rm -f "$log"
    "$venv/bin/python" -m pip check
    echo "$wanted" > "$stamp"
fi
