#!/usr/bin/env bash
# Set up .venv and run the lesson notebook headlessly at full size. Outputs go to a new folder under lesson_output/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
python tools/run_lesson.py "$@"
