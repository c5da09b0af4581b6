"""Run the lesson notebook headlessly at full size and save it, executed, with the images it makes.

Each run writes into a new folder, lesson_output/run-YYYYmmdd-HHMMSS/, so earlier runs are never
overwritten. Pass --notebook to run another notebook from nbs/ the same way.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def backbone_lines(notebook: Path) -> list[str]:
    "Return the lines in which the executed notebook announced its backbone, such as the fallback to EfficientNet-Lite0."
    found = []
    for cell in json.loads(notebook.read_text()).get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            for line in (text if isinstance(text, str) else "".join(text)).splitlines():
                if line.startswith("Using ") or "UserWarning: Using " in line:
                    message = line[line.index("Using "):]
                    if message not in found:
                        found.append(message)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="bash tools/lesson.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default="04_representations.ipynb", help="notebook in nbs/ to run (default: the lesson)")
    parser.add_argument("--output", type=Path, default=ROOT / "lesson_output", help="parent folder for the new run folder")
    args = parser.parse_args()

    source = ROOT / "nbs" / args.notebook
    if not source.is_file():
        print(f"error: {source}: notebook not found", file=sys.stderr)
        return 2
    try:
        cells = json.loads(source.read_text(encoding="utf-8")).get("cells")
    except (ValueError, AttributeError):  # not JSON, not UTF-8, or JSON that is not an object
        cells = None
    if not isinstance(cells, list):
        print(f"error: {source}: not a Jupyter notebook (expected a .ipynb file, which is JSON with a list of cells)",
              file=sys.stderr)
        return 2
    if args.output.exists() and not args.output.is_dir():
        print(f"error: {args.output}: exists and is not a folder. --output takes the folder that holds the run folders.",
              file=sys.stderr)
        return 2
    from tglcourse.generation_utils import new_run_dir  # the same never-reused run folders as optimise's previews

    out_dir = new_run_dir(args.output.resolve())
    os.environ["TGLCOURSE_OUTPUT_DIR"] = str(out_dir)
    os.environ.setdefault("MPLBACKEND", "Agg")

    from execnb.shell import CaptureShell  # imported late: it is a dev dependency, installed by tools/setup_env.sh

    display_path = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
    print(f"Running {display_path} at full size; outputs go to {out_dir}", flush=True)
    start = time.time()
    executed = out_dir / source.name
    cwd = os.getcwd()
    os.chdir(source.parent)  # the notebooks refer to ../images
    try:
        CaptureShell().execute(source, executed, exc_stop=True)
    except Exception as e:
        print(f"error: the notebook failed: {e}", file=sys.stderr)
        if not any(out_dir.iterdir()):
            out_dir.rmdir()  # the run folder this command created, still empty: nothing of the user's is lost
        else:
            print(f"Outputs written before the failure are in {out_dir}", file=sys.stderr)
        return 1
    finally:
        os.chdir(cwd)
    print(f"Done in {time.time() - start:.0f} s. Executed notebook: {executed}")
    for line in backbone_lines(executed):
        print(f"  {line}")
    for path in sorted(out_dir.iterdir()):
        if path != executed:
            print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
