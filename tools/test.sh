#!/usr/bin/env bash
# Set up .venv and run every test: the notebooks with nbdev_test, then the pytest suite in tests/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
# Tests run on the bundled backbone and never try to download weights.
export TGLCOURSE_OFFLINE=1
export MPLBACKEND=Agg
echo "== nbdev_test (notebooks in nbs/)"
nbdev_test --do_print --timing
echo "== pytest (tests/)"
python -m pytest -q tests
