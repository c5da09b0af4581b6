"""Check that images/credits.csv has exactly one row per file in images/ and known licence ids.

CREDITS.md and credits.csv themselves need no row. Exits with status 1 and lists every problem found.

    python tools/check_image_credits.py
"""

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CREDIT_FILES = {"CREDITS.md", "credits.csv"}
COLUMNS = ["file", "title", "author", "source", "license", "license_url"]
LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "PDM-1.0": "https://creativecommons.org/publicdomain/mark/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
}


def find_problems(image_dir):
    """Return one message per problem with the credits of image_dir. The list is empty when the credits are complete."""
    csv_path = image_dir / "credits.csv"
    if not csv_path.is_file():
        return [f"{csv_path} is missing"]

    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != COLUMNS:
            return [f"{csv_path} has header {reader.fieldnames}, expected {COLUMNS}"]
        rows = list(reader)

    problems = []
    counts = Counter(row["file"] for row in rows)
    files = {path.name for path in image_dir.iterdir() if path.is_file()} - CREDIT_FILES
    problems += [f"{name} has {counts[name]} rows in credits.csv, expected 1" for name in sorted(counts)
                 if counts[name] > 1]
    problems += [f"{name} is in images/ but has no row in credits.csv" for name in sorted(files - set(counts))]
    problems += [f"credits.csv has a row for {name}, which is not in images/" for name in sorted(set(counts) - files)]

    for row in rows:
        license_id = row["license"]
        if license_id not in LICENSE_URLS:
            problems.append(f"{row['file']}: licence {license_id!r} is not one of {sorted(LICENSE_URLS)}")
        elif row["license_url"] != LICENSE_URLS[license_id]:
            problems.append(f"{row['file']}: license_url {row['license_url']!r} does not match {license_id}, "
                            f"expected {LICENSE_URLS[license_id]}")
        empty = [column for column in COLUMNS if not row[column].strip()]
        if empty:
            problems.append(f"{row['file']}: empty columns {empty}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-dir", type=Path, default=REPO_ROOT / "images",
                        help="folder to check (default: images/ at the repository root)")
    args = parser.parse_args(argv)

    problems = find_problems(args.image_dir)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: every file in {args.image_dir} has exactly one row in credits.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
