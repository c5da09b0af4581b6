# Sourced by lesson.sh and test.sh: create .venv with Python 3.10+ if needed and install the project into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    python_bin="${PYTHON:-}"
    if [ -z "$python_bin" ]; then
        for candidate in python3.11 python3.12 python3.10 python3; do
            if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
        done
    fi
    if [ -z "$python_bin" ] || ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "error: Python 3.10 or newer is required (3.11 recommended). Set PYTHON=/path/to/python3.11 to choose one." >&2
        exit 1
    fi
    echo "Creating .venv with $("$python_bin" --version)"
    "$python_bin" -m venv .venv
fi

# The install is skipped when settings.ini and setup.py have not changed since the last one.
stamp=.venv/.tglcourse-installed
if [ ! -f "$stamp" ] || [ settings.ini -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    echo "Installing tglcourse and its dependencies into .venv (the first time takes several minutes)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
