"""Checks of tglcourse.search that need several processes, signals, the command line or the optional packages.

Incremental updates, a SIGKILL in the middle of a build, readers querying while a writer adds images, bad
files, Ray Data on a local instance, and `tglcourse index` / `tglcourse search` on the course's images.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tglcourse.backbones import efficientnet_lite0
from tglcourse.provenance import read_credits, read_provenance
from tglcourse.search import (INDEX_FILE_NAME, EmptyFolderError, ImageIndex, IndexFileError, IndexMismatchError,
                              backbone_fingerprint, file_sha256)
from tglcourse.utils import ImageNotFoundError, UnreadableImageError
from without_file_override import DROP_FILE_PERMISSION_OVERRIDE

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("TGLCOURSE_OFFLINE", "1")  # no test may try to download VGG16


@pytest.fixture(scope="module")
def backbone():
    return efficientnet_lite0()


def make_image(path: Path, seed: int, size=(160, 120)):
    "Write a random picture: a coloured background, noise and a few rectangles."
    rng = np.random.default_rng(seed)
    pixels = np.empty((size[1], size[0], 3), dtype=np.uint8)
    pixels[:] = rng.integers(0, 256, 3)
    pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
    for _ in range(3):
        x, y = rng.integers(0, size[0] - 20), rng.integers(0, size[1] - 20)
        pixels[y:y + rng.integers(10, 60), x:x + rng.integers(10, 60)] = rng.integers(0, 256, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_folder(folder: Path, n: int, first_seed: int = 0) -> Path:
    for i in range(n):
        make_image(folder / f"img_{first_seed + i:03d}.jpg", seed=first_seed + i)
    return folder


def rows_by_path(index: ImageIndex) -> dict:
    keys, vectors = index.vectors()
    return dict(zip(keys, vectors))


def count_rows(index_path: Path) -> int:
    "Count indexed images from another connection; 0 while the file or its table does not exist yet."
    if not index_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{index_path}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def count_embedded(backbone, monkeypatch) -> list:
    "Make `backbone.embed` record the batch size of every call; return the list it appends to."
    calls, embed = [], type(backbone).embed
    monkeypatch.setattr(backbone, "embed", lambda x: (calls.append(len(x)), embed(backbone, x))[1])
    return calls


# ---------------------------------------------------------------- incremental updates

def test_update_embeds_only_changes(tmp_path, backbone, monkeypatch):
    folder = make_folder(tmp_path / "photos", 12)
    index = ImageIndex(folder, backbone=backbone, index_path=tmp_path / "index.sqlite")
    first = index.update(batch_size=4, num_workers=1, quiet=True)
    assert len(first.embedded) == 12
    before = rows_by_path(index)

    make_image(folder / "new" / "a.jpg", seed=100)                   # new, in a subfolder
    make_image(folder / "new" / "b.png", seed=101)                   # new
    make_image(folder / "img_000.jpg", seed=200)                     # rewritten with other content
    (folder / "img_001.jpg").unlink()                                # deleted
    os.utime(folder / "img_002.jpg", ns=(time.time_ns(), time.time_ns() + 10**9))  # touched only
    (folder / "img_003.jpg").rename(folder / "renamed.jpg")          # renamed
    calls = count_embedded(backbone, monkeypatch)
    report = index.update(batch_size=4, num_workers=1, quiet=True)

    assert sum(calls) == 3
    assert sorted(report.embedded) == ["img_000.jpg", "new/a.jpg", "new/b.png"]
    assert report.copied == ["renamed.jpg"]
    assert report.touched == ["img_002.jpg"]
    assert report.removed == ["img_001.jpg", "img_003.jpg"]
    assert report.unchanged == 8
    after = rows_by_path(index)
    assert len(after) == 13
    for key in ["img_002.jpg", "img_004.jpg", "img_011.jpg"]:
        assert after[key].tobytes() == before[key].tobytes()  # untouched rows are not re-embedded
    assert after["renamed.jpg"].tobytes() == before["img_003.jpg"].tobytes()

    # The incremental index contains what a build from scratch gives.
    fresh = ImageIndex(folder, backbone=backbone, index_path=tmp_path / "fresh.sqlite")
    fresh.update(batch_size=5, num_workers=0, quiet=True)
    expected = rows_by_path(fresh)
    assert sorted(expected) == sorted(after)
    for key in expected:
        np.testing.assert_allclose(after[key], expected[key], atol=1e-5)


def test_swapped_contents_swap_embeddings(tmp_path, backbone, monkeypatch):
    folder = make_folder(tmp_path / "photos", 3)
    index = ImageIndex(folder, backbone=backbone)
    index.update(quiet=True)
    before = rows_by_path(index)
    first, second = (folder / "img_000.jpg").read_bytes(), (folder / "img_001.jpg").read_bytes()
    (folder / "img_000.jpg").write_bytes(second)
    (folder / "img_001.jpg").write_bytes(first)
    calls = count_embedded(backbone, monkeypatch)
    report = index.update(quiet=True)
    assert sum(calls) == 0  # both contents were indexed already
    assert report.copied == ["img_000.jpg", "img_001.jpg"]
    after = rows_by_path(index)
    assert after["img_000.jpg"].tobytes() == before["img_001.jpg"].tobytes()
    assert after["img_001.jpg"].tobytes() == before["img_000.jpg"].tobytes()
    assert index.update(quiet=True).unchanged == 3  # the rows record the new sizes and times


def test_unchanged_folder_hashes_nothing(tmp_path, backbone, monkeypatch):
    folder = make_folder(tmp_path / "photos", 5)
    index = ImageIndex(folder, backbone=backbone)
    index.update(quiet=True)
    hashed = []
    monkeypatch.setattr("tglcourse.search.file_sha256", lambda path, *args: hashed.append(path))
    report = index.update(quiet=True)
    assert hashed == []
    assert (report.embedded, report.copied, report.touched, report.removed, report.unchanged) == ([], [], [], [], 5)


def test_index_path_outside_folder(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 3)
    before = sorted(p.name for p in folder.iterdir())
    index = ImageIndex(folder, backbone=backbone, index_path=tmp_path / "elsewhere" / "i.sqlite")  # folder created
    index.update(quiet=True)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert len(ImageIndex.open(tmp_path / "elsewhere" / "i.sqlite")) == 3


def test_default_index_file_is_hidden_in_folder(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 2)
    index = ImageIndex(folder, backbone=backbone)
    report = index.update(quiet=True)
    assert (folder / INDEX_FILE_NAME).is_file()
    assert report.skipped == []  # the index file and its -wal and -shm companions are never scanned


# ---------------------------------------------------------------- bad input

def test_bad_files_skipped_and_retried(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 3)
    good = (IMAGES / "coffee.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not a JPEG")
    (folder / "noise.png").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "notes.txt").write_text("shopping list")
    index = ImageIndex(folder, backbone=backbone)
    report = index.update(batch_size=2, num_workers=1, quiet=True)

    reasons = dict(report.skipped)
    assert sorted(reasons) == ["empty.jpg", "noise.png", "notes.txt", "text.jpg", "truncated.jpg"]
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert reasons["truncated.jpg"] == "truncated image data"
    assert reasons["text.jpg"].startswith("not an image")
    assert reasons["notes.txt"].startswith("not an image")
    assert len(index) == 3
    assert index.skipped_files() == report.skipped

    (folder / "truncated.jpg").write_bytes(good)  # repaired: the next update indexes it
    (folder / "notes.txt").unlink()
    again = index.update(quiet=True)
    assert again.embedded == ["truncated.jpg"]
    assert sorted(dict(again.skipped)) == ["empty.jpg", "noise.png", "text.jpg"]
    assert len(index) == 4


def test_long_strips_embedded_in_little_memory(tmp_path):
    folder = tmp_path / "strips"
    folder.mkdir()
    strip = np.zeros((3, 20000, 3), dtype=np.uint8)
    strip[:, 6667:13334] = (0, 255, 0)
    Image.fromarray(strip).save(folder / "wide.png")
    Image.fromarray(strip.transpose(1, 0, 2)).save(folder / "tall.png")
    # Resizing a 20000x3 strip to a 256-pixel shorter side before cropping would take 1.3 GB per image.
    code = ("import resource, sys; from tglcourse.cli import main; code = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, "index", str(folder), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    peak_mib = int(result.stdout.split()[-1])
    assert peak_mib < 1500, f"peak memory {peak_mib} MiB"
    index = ImageIndex(folder, backbone=efficientnet_lite0())
    assert sorted(index.vectors()[0]) == ["tall.png", "wide.png"]
    assert index.skipped_files() == []
    index.close()


def test_unreadable_file_skipped(tmp_path, backbone, monkeypatch):
    folder = make_folder(tmp_path / "photos", 2)
    real_sha256 = file_sha256

    def deny_first(path, *args):  # like a file without read permission, which root could still read
        if Path(path).name == "img_000.jpg":
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha256(path, *args)

    monkeypatch.setattr("tglcourse.search.file_sha256", deny_first)
    index = ImageIndex(folder, backbone=backbone)
    report = index.update(quiet=True)
    assert report.skipped == [("img_000.jpg", "cannot read the file (Permission denied)")]
    assert report.embedded == ["img_001.jpg"]
    monkeypatch.setattr("tglcourse.search.file_sha256", real_sha256)
    assert index.update(quiet=True).embedded == ["img_000.jpg"]  # retried, and readable now


def test_missing_and_empty_folders(tmp_path, backbone):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageIndex(tmp_path / "missing", backbone=backbone)
    empty = tmp_path / "empty"
    (empty / ".thumbnails").mkdir(parents=True)
    (empty / ".thumbnails" / "a.jpg").write_bytes(b"x")  # hidden files do not count
    (empty / "CREDITS.md").write_text("credits")
    with pytest.raises(EmptyFolderError, match="contains no files to index"):
        ImageIndex(empty, backbone=backbone, index_path=tmp_path / "i.sqlite").update(quiet=True)


def test_emptied_folder_keeps_index(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 2)
    index = ImageIndex(folder, backbone=backbone, index_path=tmp_path / "i.sqlite")
    index.update(quiet=True)
    for path in folder.iterdir():
        path.unlink()  # like an unmounted drive: refuse rather than forget every image
    with pytest.raises(EmptyFolderError):
        index.update(quiet=True)
    assert len(index) == 2


def test_unreadable_queries(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 2)
    index = ImageIndex(folder, backbone=backbone)
    index.update(quiet=True)
    with pytest.raises(ImageNotFoundError, match="missing.jpg: file not found"):
        index.search(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(UnreadableImageError, match="bad.jpg: not an image"):
        index.search(tmp_path / "bad.jpg")
    with pytest.raises(UnreadableImageError, match="is a directory"):
        index.search(folder)
    with pytest.raises(TypeError, match="cannot read a .*dict"):
        index.search({"not": "an image"})


# ---------------------------------------------------------------- index files

def test_other_backbone_rejected_or_rebuilt(tmp_path, backbone):
    import copy
    folder = make_folder(tmp_path / "photos", 3)
    ImageIndex(folder, backbone=backbone).update(quiet=True)
    retrained = copy.deepcopy(backbone)
    retrained.classifier.weight.mul_(1.01)
    assert backbone_fingerprint(retrained) != backbone_fingerprint(backbone)
    with pytest.raises(IndexMismatchError, match="rebuild=True"):
        ImageIndex(folder, backbone=retrained)
    rebuilt = ImageIndex(folder, backbone=retrained, rebuild=True)
    assert len(rebuilt) == 0
    assert len(rebuilt.update(quiet=True).embedded) == 3
    with pytest.raises(IndexMismatchError):
        ImageIndex(folder, backbone=backbone)  # now the index belongs to the other network


def test_foreign_files_left_untouched(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 1)
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE users (name TEXT)")
    content = other.read_bytes()
    with pytest.raises(IndexFileError, match="not a tglcourse image index"):
        ImageIndex(folder, backbone=backbone, index_path=other)
    assert other.read_bytes() == content
    text = tmp_path / "notes.txt"
    text.write_text("keep me")
    with pytest.raises(IndexFileError, match="not an SQLite database"):
        ImageIndex(folder, backbone=backbone, index_path=text)
    assert text.read_text() == "keep me"


# ---------------------------------------------------------------- reliability

SLOW_BUILD = """
import sys, time
from tglcourse.backbones import efficientnet_lite0
from tglcourse.search import ImageIndex
backbone = efficientnet_lite0()
embed = backbone.embed
def slow_embed(x):
    time.sleep(0.3)  # gives the test time to kill the build between two batches, or in the middle of one
    return embed(x)
backbone.embed = slow_embed
ImageIndex(sys.argv[1], backbone=backbone, index_path=sys.argv[2]).update(batch_size=4, num_workers=1, quiet=True)
"""


def start_build(script: Path, folder: Path, index_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), str(folder), str(index_path)],
                            start_new_session=True, stderr=subprocess.PIPE)


def kill_when(process: subprocess.Popen, condition, timeout: float = 120.0):
    "SIGKILL the process group of `process` as soon as `condition()` is true."
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the build ended before it could be killed: {process.stderr.read().decode()}"
        assert time.monotonic() < deadline, "timed out waiting for the build to reach the kill point"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()


def test_sigkill_mid_build(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 40)
    index_path = tmp_path / "index.sqlite"
    script = tmp_path / "slow_build.py"
    script.write_text(SLOW_BUILD)
    counts = []
    kill_points = [lambda: index_path.exists(),             # while the file is being created
                   lambda: count_rows(index_path) >= 8,     # after a few batches
                   lambda: count_rows(index_path) >= 24]    # later, in a run that resumed
    for condition in kill_points:
        kill_when(start_build(script, folder, index_path), condition)
        with sqlite3.connect(index_path) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        index = ImageIndex(folder, backbone=backbone, index_path=index_path)  # opens after every kill
        counts.append(len(index))
        if len(index):
            results = index.search(folder / "img_000.jpg", k=3)
            assert len(results) == min(3, len(index))
            assert all(-1.0 <= score <= 1.0001 for _, score in results)
        index.close()
    assert 8 <= counts[1] < 40, counts
    assert 24 <= counts[2] < 40, counts
    assert counts[2] >= counts[1]  # the resumed run kept the earlier batches

    index = ImageIndex(folder, backbone=backbone, index_path=index_path)
    report = index.update(quiet=True)
    assert len(index) == 40
    assert len(report.embedded) == 40 - counts[2]  # only what the killed runs had not finished
    assert index.search(folder / "img_000.jpg", k=1)[0][0] == folder / "img_000.jpg"
    for key, vector in rows_by_path(index).items():
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5, key


SLOW_COMMAND = """
import sys, time
import tglcourse.backbones as backbones
from tglcourse.cli import main
embed = backbones.Backbone.embed
def slow_embed(self, x):
    time.sleep(0.3)  # gives the test time to interrupt the command between batches
    return embed(self, x)
backbones.Backbone.embed = slow_embed
sys.exit(main(["index", *sys.argv[1:]]))
"""


def test_ctrl_c_during_index_command(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 20)
    index_path = tmp_path / "index.sqlite"
    script = tmp_path / "slow_command.py"
    script.write_text(SLOW_COMMAND)
    process = subprocess.Popen([sys.executable, str(script), str(folder), "--index", str(index_path), "--batch-size", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (index_path.exists() and count_rows(index_path) >= 4):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out waiting for the first batches"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == ("tglcourse index: interrupted (Ctrl-C). The images embedded so far are "
                                               "saved in the index. Run the same command again to finish it.")
    kept_rows = count_rows(index_path)
    assert 4 <= kept_rows < 20
    index = ImageIndex(folder, backbone=backbone, index_path=index_path)
    assert len(index.update(quiet=True).embedded) == 20 - kept_rows
    assert len(index) == 20
    index.close()


READER = """
import os, sys, time
from pathlib import Path
from tglcourse.backbones import efficientnet_lite0
from tglcourse.search import ImageIndex
folder, index_path, stop = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
index = ImageIndex(folder, backbone=efficientnet_lite0(), index_path=index_path)
query = index.embed_query(folder / "img_000.jpg")
sizes = []
while not stop.exists() or len(sizes) < 5:
    results = index.search_embedding(query, k=3)
    assert results[0][0] == folder / "img_000.jpg", results
    sizes.append(len(index.vectors()[0]))
    (stop.parent / f"ready-{os.getpid()}").touch()
    time.sleep(0.05)
print(min(sizes), max(sizes), len(sizes))
"""


def test_two_readers_while_writer_adds(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 8)
    index_path = tmp_path / "index.sqlite"
    index = ImageIndex(folder, backbone=backbone, index_path=index_path)
    index.update(quiet=True)
    script, stop = tmp_path / "reader.py", tmp_path / "stop"
    script.write_text(READER)
    readers = [subprocess.Popen([sys.executable, str(script), str(folder), str(index_path), str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready-*"))) < 2:  # both readers have imported torch and run a query
            assert time.monotonic() < deadline, "the readers did not start"
            assert all(reader.poll() is None for reader in readers), readers[0].stderr.read()
            time.sleep(0.1)
        make_folder(folder, 24, first_seed=8)
        report = index.update(batch_size=4, num_workers=1, quiet=True)
        assert len(report.embedded) == 24
        time.sleep(1)
    finally:
        stop.touch()
        outputs = [reader.communicate(timeout=120) for reader in readers]
    for reader, (out, err) in zip(readers, outputs):
        assert reader.returncode == 0, err
        smallest, largest, n_queries = map(int, out.split())
        assert smallest == 8  # queries ran before the writer added images ...
        assert largest == 32  # ... and while it added them, or after
        assert n_queries >= 5
    assert len(index) == 32


# ---------------------------------------------------------------- Ray Data

def test_ray_embeddings_load_into_index(tmp_path, backbone):
    ray = pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    from tglcourse.search import embed_folder_with_ray

    folder = make_folder(tmp_path / "photos", 6)
    (folder / "broken.jpg").write_text("not an image")
    ray_temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit in 107 characters
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=ray_temp)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        out = embed_folder_with_ray(folder, tmp_path / "embeddings", backbone_name="efficientnet_lite0", batch_size=4)
        with pytest.raises(FileExistsError, match="folder is not empty"):
            embed_folder_with_ray(folder, out, backbone_name="efficientnet_lite0")
    finally:
        ray.shutdown()
        shutil.rmtree(ray_temp, ignore_errors=True)

    make_image(folder / "img_005.jpg", seed=500)  # changed after the Ray job read it
    index = ImageIndex(folder, backbone=backbone, index_path=tmp_path / "ray.sqlite")
    imported = index.import_embeddings(out, quiet=True)
    assert sorted(imported.embedded) == [f"img_00{i}.jpg" for i in range(5)]
    assert imported.skipped == [("broken.jpg", "not an image (Pillow cannot identify the file format)")]
    report = index.update(quiet=True)
    assert report.embedded == ["img_005.jpg"]  # only the changed file; imported rows count as unchanged
    assert report.unchanged == 5

    local = ImageIndex(folder, backbone=backbone, index_path=tmp_path / "local.sqlite")
    local.update(quiet=True)
    expected, found = rows_by_path(local), rows_by_path(index)
    assert sorted(found) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(found[key], expected[key], atol=1e-5)


def test_ray_rows_of_other_backbone_rejected(tmp_path, backbone):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    folder = make_folder(tmp_path / "photos", 1)
    out = tmp_path / "embeddings"
    out.mkdir()
    table = pa.table({"path": ["img_000.jpg"], "size": [1], "sha256": ["0" * 64], "embedding": [b"\0" * 4],
                      "reason": [""], "backbone": ["vgg16"], "backbone_fingerprint": ["f" * 64]})
    pq.write_table(table, out / "part.parquet")
    index = ImageIndex(folder, backbone=backbone)
    with pytest.raises(IndexMismatchError, match="run embed_folder_with_ray with the index's backbone"):
        index.import_embeddings(out, quiet=True)
    assert len(index) == 0


# ---------------------------------------------------------------- command line

def run_tglcourse(*args, cwd=None):
    return subprocess.run([str(BIN / "tglcourse"), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, "TGLCOURSE_OFFLINE": "1"})


def test_commands_on_course_images(tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(IMAGES, folder)
    (folder / "empty.jpg").write_bytes(b"")
    built = run_tglcourse("index", folder, "--backbone", "efficientnet_lite0", "--workers", "1")
    assert built.returncode == 0, built.stderr
    n_images = len([p for p in IMAGES.iterdir() if p.suffix in {".jpg", ".png"}])
    assert f"{n_images} embedded" in built.stdout
    assert "skipped empty.jpg: empty file (0 bytes)" in built.stdout

    again = run_tglcourse("index", folder)  # the backbone recorded in the index is used
    assert again.returncode == 0, again.stderr
    assert "the backbone this index was built with" in again.stdout
    assert "as requested" not in again.stdout
    assert "0 embedded" in again.stdout
    assert f"{n_images} unchanged" in again.stdout

    grid = tmp_path / "matches.png"
    found = run_tglcourse("search", IMAGES / "chelsea_crop.jpg", "--folder", folder, "--top", "3", "--grid", grid)
    assert found.returncode == 0, found.stderr
    table = found.stdout.splitlines()
    assert table[0].split() == ["rank", "score", "path"]
    assert table[1].split() == ["1", "1.000", "chelsea_crop.jpg"]
    assert table[2].split()[2] == "chelsea.jpg"
    assert len(table) >= 4
    assert Image.open(grid).size[0] == 4 * 150
    record = read_provenance(grid)  # the grid shows other people's photos, so it names them
    assert record.kind == "search grid"
    assert record.sources["query"].file == "chelsea_crop.jpg"
    assert record.sources["match 2"].file == "chelsea.jpg"
    assert record.sources["match 2"].license == read_credits(IMAGES)["chelsea.jpg"].license

    from_inside = run_tglcourse("search", "chelsea.jpg", "--top", "1", cwd=folder)  # --folder defaults to '.'
    assert from_inside.returncode == 0, from_inside.stderr
    assert from_inside.stdout.splitlines()[1].split()[2] == "chelsea.jpg"


def test_command_errors(tmp_path):
    missing = run_tglcourse("index", tmp_path / "nowhere")
    assert missing.returncode == 1
    assert missing.stderr == f"tglcourse index: error: {tmp_path / 'nowhere'}: image folder not found\n"
    no_index = run_tglcourse("search", IMAGES / "chelsea.jpg", "--folder", tmp_path)
    assert no_index.returncode == 1
    assert "no index found" in no_index.stderr
    assert "--folder" in no_index.stderr
    usage = run_tglcourse("search")
    assert usage.returncode == 2
    assert "the following arguments are required: query" in usage.stderr


def test_index_command_empty_folder_writes_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "CREDITS.md").write_text("credits only")
    done = run_tglcourse("index", empty)
    assert done.returncode == 1
    assert "contains no files to index" in done.stderr
    assert sorted(p.name for p in empty.iterdir()) == ["CREDITS.md"]


def test_index_command_rejects_bad_numbers(tmp_path):
    for option, value, expected in [("--batch-size", "0", "expected a positive whole number, got '0'"),
                                    ("--workers", "-1", "expected 0 or a positive whole number, got '-1'")]:
        done = run_tglcourse("index", tmp_path, option, value)
        assert done.returncode == 2
        assert done.stderr.splitlines()[-1] == f"tglcourse index: error: argument {option}: {expected}"


def test_index_command_quiet_prints_nothing(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(IMAGES / "chelsea.jpg", folder)
    done = run_tglcourse("index", folder, "--quiet")  # 'auto' falls back to EfficientNet-Lite0 offline
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""


def test_index_command_no_readable_image(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("no pictures here")
    (folder / "data.json").write_text("{}")
    done = run_tglcourse("index", folder, "--quiet")
    assert done.returncode == 1
    assert done.stderr.startswith(f"tglcourse index: error: {folder}: none of its 2 files could be read as an image "
                                  "(data.json: not an image")
    assert "notes.txt: not an image" in done.stderr
    search_run = run_tglcourse("search", IMAGES / "chelsea.jpg", "--folder", folder)
    assert search_run.returncode == 1
    assert "contains no images" in search_run.stderr
    assert "lists the files it cannot read" in search_run.stderr


def test_search_warns_of_deleted_match(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(IMAGES / name, folder)
    assert run_tglcourse("index", folder, "--quiet").returncode == 0
    (folder / "chelsea.jpg").unlink()
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"an older grid")
    found = run_tglcourse("search", IMAGES / "chelsea.jpg", "--folder", folder, "--top", "2", "--grid", grid, "--force")
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[1].split() == ["1", "1.000", "chelsea.jpg"]
    assert found.stderr.splitlines() == [
        f"tglcourse search: warning: 1 match no longer exists in {folder} (chelsea.jpg): "
        "run `tglcourse index FOLDER`, or call update() in Python, to refresh the index"]
    with Image.open(grid) as replaced:  # --force replaced the old file
        assert replaced.format == "PNG"
        assert replaced.width == 3 * 150


def test_add_rejects_folder_and_non_paths(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 1)
    index = ImageIndex(folder, backbone=backbone)
    with pytest.raises(IsADirectoryError, match="the collection folder itself: call update()"):
        index.add(folder)
    with pytest.raises(TypeError, match="add\\(\\) expects a path or a list of paths, got int 5"):
        index.add(5)
    with pytest.raises(TypeError, match="got int 5"):
        index.add([5])
    report = index.add(folder / "img_000.jpg")
    assert str(report).startswith("1 image indexed in ")
    index.close()


READ_ONLY_CHECK = DROP_FILE_PERMISSION_OVERRIDE + """
from pathlib import Path
from tglcourse.backbones import efficientnet_lite0
from tglcourse.search import ImageIndex, IndexFileError
folder, empty = Path(sys.argv[1]), Path(sys.argv[2])
backbone = efficientnet_lite0()
with ImageIndex(folder, backbone=backbone) as index:
    print("read_only:", index.read_only)
    print("top:", index.search(folder / "chelsea.jpg", k=1)[0][0].name)
    try:
        index.update(quiet=True)
    except IndexFileError as e:
        print("update:", e)
try:
    ImageIndex(empty, backbone=backbone)
except IndexFileError as e:
    print("new index:", e)
"""


def test_index_in_read_only_folder(tmp_path, backbone):
    folder, empty = tmp_path / "photos", tmp_path / "locked"
    folder.mkdir()
    empty.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(IMAGES / name, folder)
    with ImageIndex(folder, backbone=backbone) as index:  # closing removes the -wal and -shm files beside it
        index.update(quiet=True)
    folder.chmod(0o555)
    empty.chmod(0o555)
    try:
        done = subprocess.run([sys.executable, "-c", READ_ONLY_CHECK, str(folder), str(empty)],
                              capture_output=True, text=True, timeout=300)
    finally:
        folder.chmod(0o755)
        empty.chmod(0o755)
    if "cannot drop capabilities" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "read_only: True"
    assert lines[1] == "top: chelsea.jpg"
    assert lines[2] == (f"update: {folder / INDEX_FILE_NAME}: opened read-only because {folder} is not writable, so the "
                        "index cannot be updated. Keep the index somewhere writable with index_path (--index for the "
                        "tglcourse command).")
    assert lines[3].startswith(f"new index: {empty / INDEX_FILE_NAME}: cannot open or create the index file (")
    assert "If its folder is read-only, keep the index somewhere writable with index_path (--index" in lines[3]
    assert list(empty.iterdir()) == []


def test_odd_file_names(tmp_path, backbone):
    folder = make_folder(tmp_path / "photos", 1)
    undecodable = os.fsencode(folder) + b"/bad\xffname.jpg"
    with open(undecodable, "wb") as f:
        f.write((IMAGES / "coffee.jpg").read_bytes())
    shutil.copy(IMAGES / "chelsea.jpg", folder / "new\nline.jpg")
    index = ImageIndex(folder, backbone=backbone)
    report = index.update(quiet=True)
    assert sorted(report.embedded) == ["img_000.jpg", "new\nline.jpg"]
    assert report.skipped == [("bad\\xffname.jpg", "the name is not valid UTF-8, which the index cannot store; rename it")]
    index.close()
    found = run_tglcourse("search", IMAGES / "chelsea.jpg", "--folder", folder, "--top", "1")
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[1].split() == ["1", "1.000", "new\\nline.jpg"]


def test_search_command_path_errors(tmp_path):
    missing = run_tglcourse("search", IMAGES / "chelsea.jpg", "--folder", tmp_path / "nowhere")
    assert missing.returncode == 1
    assert missing.stderr == (f"tglcourse search: error: {tmp_path / 'nowhere'}: folder not found "
                              "(--folder names the folder you indexed)\n")
    a_folder = run_tglcourse("search", IMAGES / "chelsea.jpg", "--index", tmp_path)
    assert a_folder.returncode == 1
    assert f"{tmp_path}: is a folder, not an index file" in a_folder.stderr
    damaged = tmp_path / "photos"
    damaged.mkdir()
    (damaged / INDEX_FILE_NAME).write_text("not a database")
    found = run_tglcourse("search", IMAGES / "chelsea.jpg", "--folder", damaged)
    assert found.returncode == 1
    assert "if it is a damaged tglcourse index, delete it and run `tglcourse index FOLDER` to rebuild it" in found.stderr
    assert (damaged / INDEX_FILE_NAME).read_text() == "not a database"
