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


def run_lesson(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "run_lesson.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_lesson_command_rejects_bad_arguments(tmp_path):
    not_notebook = run_lesson("--notebook", ROOT / "README.md", "--output", tmp_path / "out")
    assert not_notebook.returncode == 2
    assert not_notebook.stderr == f"error: {ROOT / 'README.md'}: not a Jupyter notebook (expected a .ipynb file, which is JSON with a list of cells)\n"
    a_file = tmp_path / "afile"
    a_file.write_text("keep me")
    file_as_output = run_lesson("--output", a_file)
    assert file_as_output.returncode == 2
    assert file_as_output.stderr == f"error: {a_file}: exists and is not a folder. --output takes the folder that holds the run folders.\n"
    assert a_file.read_text() == "keep me"
    assert not (tmp_path / "out").exists()


def test_failed_lesson_leaves_no_empty_run_folder(tmp_path):
    notebook = tmp_path / "fails.ipynb"
    notebook.write_text('{"cells": [{"cell_type": "code", "execution_count": null, "id": "a1b2c3d4", "metadata": {}, '
                        '"outputs": [], "source": ["raise RuntimeError(\'this cell fails\')"]}], "metadata": {}, '
                        '"nbformat": 4, "nbformat_minor": 5}')
    output = tmp_path / "out"
    output.mkdir()
    (output / "earlier-run").mkdir()
    failed = run_lesson("--notebook", notebook, "--output", output)
    assert failed.returncode == 1
    assert "error: the notebook failed" in failed.stderr
    assert "this cell fails" in failed.stderr
    assert sorted(p.name for p in output.iterdir()) == ["earlier-run"]


def test_library_has_no_undefined_names():
    """Find names the exported modules use but never define or import.

    A notebook's hidden test cells can import a module that its exported cells forget, so the notebook's tests
    pass while the library fails at run time. pyflakes reads the exported files as they are.
    """
    from pyflakes.api import checkPath
    from pyflakes.reporter import Reporter
    import io
    messages = io.StringIO()
    for module in sorted((ROOT / "tglcourse").glob("*.py")):
        checkPath(str(module), Reporter(messages, messages))
    undefined = [line for line in messages.getvalue().splitlines() if "undefined name" in line]
    assert undefined == []
