"""Project-level checks that no single notebook owns: image credits and the notebooks/library sync."""
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
ALLOWED_LICENSES = {"CC0-1.0", "PDM-1.0", "CC-BY-4.0", "CC-BY-3.0", "CC-BY-2.0"}


def read_credits():
    with open(IMAGES / "credits.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_image_has_one_credit_row():
    files = sorted(p.name for p in IMAGES.iterdir() if p.is_file() and p.name not in {"CREDITS.md", "credits.csv"})
    rows = [r["file"] for r in read_credits()]
    assert sorted(rows) == files
    assert len(files) >= 12


@pytest.mark.parametrize("row", read_credits(), ids=lambda r: r["file"])
def test_credit_row_is_complete(row):
    assert row["license"] in ALLOWED_LICENSES, f"{row['file']}: licence {row['license']!r} is not one we ship"
    for column in ("title", "author", "source", "license_url"):
        assert row[column].strip(), f"{row['file']}: empty {column}"
    assert row["file"] in (IMAGES / "CREDITS.md").read_text(encoding="utf-8")


def test_library_matches_notebooks(tmp_path):
    """Check that tglcourse/ is exactly what nbdev_export makes from nbs/, so that hand edits are caught."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "lesson_output", "runs", "__pycache__", "*.egg-info"))
    subprocess.run([str(Path(sys.executable).parent / "nbdev_export")], cwd=copy, check=True, capture_output=True)
    for exported in sorted((ROOT / "tglcourse").glob("*.py")):
        regenerated = copy / "tglcourse" / exported.name
        assert regenerated.read_text() == exported.read_text(), f"tglcourse/{exported.name} differs from its notebook: run nbdev_export"
