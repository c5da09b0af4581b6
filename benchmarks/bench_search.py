"""Benchmark tglcourse.search: batched embedding, incremental re-indexing, and exact against FAISS search.

Every comparison is a ratio of two timings taken in the same run, so a busy machine slows both sides alike.
Run from the repository root, with the optional packages installed (`pip install faiss-cpu`):

    python benchmarks/bench_search.py            # 300 images; 100,000 and 1,000,000 vectors (needs about 11 GB)
    python benchmarks/bench_search.py --quick    # 60 images; 20,000 vectors; about a minute

It uses the bundled EfficientNet-Lite0 (1280-dimensional embeddings) and writes only into a temporary folder.
"""
import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TGLCOURSE_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tglcourse.backbones import efficientnet_lite0
from tglcourse.utils import load_image_pil
from tglcourse.search import (INDEX_FILE_NAME, FaissIVFIndex, ImageIndex, default_batch_size, default_num_workers,
                              embed_files, exact_top_k, file_sha256, recall_at_k, scan_folder)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def make_photo(path: Path, rng, size=(640, 480)):
    "Write a JPEG with the detail of a photo: a colour gradient, shapes and sensor-like noise."
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3) + rng.uniform(-0.2, 0.2, 3) * x[..., None] + rng.uniform(-0.2, 0.2, 3) * y[..., None]
    pixels = base + rng.normal(0, 12, (h, w, 3))
    for _ in range(6):
        x0, y0 = rng.integers(0, w - 40), rng.integers(0, h - 40)
        pixels[y0:y0 + rng.integers(20, 200), x0:x0 + rng.integers(20, 200)] = rng.uniform(0, 255, 3)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def embed_one_at_a_time(backbone, paths) -> float:
    "Embed images one by one, decoding each in the main process; return the seconds taken."
    start = time.perf_counter()
    with torch.inference_mode():
        for path in paths:
            F.normalize(backbone.embed(backbone.preprocess(path)), dim=1)
    return time.perf_counter() - start


def embed_with_pipeline(backbone, paths, batch_size, num_workers) -> float:
    "Embed images with embed_files (no hashing, no SQLite); return the seconds taken."
    start = time.perf_counter()
    for _ in embed_files(paths, backbone, batch_size, num_workers):
        pass
    return time.perf_counter() - start


def bench_embedding(backbone, workdir: Path, n_images: int, rounds: int = 6) -> None:
    batch, workers = default_batch_size(backbone), default_num_workers()
    print(f"== embedding {n_images} generated 640x480 JPEGs with {backbone.name}, {torch.get_num_threads()} torch threads, "
          f"default batch {batch}, {workers} decoding workers")
    rng = np.random.default_rng(0)
    folders = []
    for r in range(rounds):  # the methods alternate, round by round, so that a change in load hits all of them
        folder = workdir / f"photos_{r}"
        folder.mkdir()
        for i in range(n_images // rounds):
            make_photo(folder / f"photo_{i:04d}.jpg", rng)
        folders.append(folder)
    embed_one_at_a_time(backbone, sorted(folders[0].iterdir())[:3])  # warm-up: first calls allocate memory

    settings = [(1, 0), (4, 0), (8, 0), (32, 0), (4, 2), (32, 2)]  # (batch size, worker processes)
    single_s = build_s = reindex_s = 0.0
    seconds_by_setting = dict.fromkeys(settings, 0.0)
    n_done, ratios = 0, []
    for folder in folders:
        paths = sorted(folder.iterdir())
        single = embed_one_at_a_time(backbone, paths)
        for setting in settings:
            seconds_by_setting[setting] += embed_with_pipeline(backbone, paths, *setting)
        start = time.perf_counter()
        index = ImageIndex(folder, backbone=backbone)
        report = index.update(quiet=True)
        build = time.perf_counter() - start
        start = time.perf_counter()
        again = index.update(quiet=True)
        reindex_s += time.perf_counter() - start
        assert again.embedded == []
        assert again.unchanged == len(paths)
        index.close()
        print(f"  round of {len(paths)}: one at a time {len(paths) / single:5.1f} images/s, "
              f"ImageIndex.update {len(report.embedded) / build:5.1f} images/s, ratio {single / build:.2f}x")
        single_s, build_s, n_done = single_s + single, build_s + build, n_done + len(paths)
        ratios.append(single / build)
    print(f"one image at a time:                   {n_done / single_s:7.1f} images/s")
    for (size, workers_here), seconds in seconds_by_setting.items():
        print(f"embed_files, batch {size:2d}, {workers_here} workers:     {n_done / seconds:7.1f} images/s = "
              f"{single_s / seconds:.2f}x one at a time")
    print(f"ImageIndex.update (full build):        {n_done / build_s:7.1f} images/s, hashing and SQLite included")
    print(f"ratio update() / one at a time:        {single_s / build_s:7.2f}x overall, median of the rounds "
          f"{np.median(ratios):.2f}x   (goal: at least 3x)")
    print(f"re-index of the unchanged folders:     {reindex_s * 1000:7.1f} ms = "
          f"{100 * reindex_s / build_s:.2f}% of the full build   (goal: under 2%)")


def bench_large_photo_decoding(workdir: Path, repeats: int = 5) -> None:
    "Compare decoding a phone-sized JPEG for embedding with and without libjpeg's reduced-scale decoding."
    from tglcourse.utils import _resize
    print("\n== decoding a 4032x3024 JPEG for embedding (shorter side to 256 pixels)")
    path = workdir / "phone_photo.jpg"
    make_photo(path, np.random.default_rng(2), size=(4032, 3024))

    def full_decode():
        with Image.open(path) as im:
            return _resize(im.convert("RGB"), 256)

    def tglcourse_decode():
        return load_image_pil(path, size=256)

    times = {}
    for decode in (full_decode, tglcourse_decode, full_decode, tglcourse_decode):  # alternated, warm-up included
        decode()
        start = time.perf_counter()
        for _ in range(repeats):
            decode()
        times.setdefault(decode.__name__, []).append((time.perf_counter() - start) / repeats)
    full_s, ours_s = min(times["full_decode"]), min(times["tglcourse_decode"])
    difference = np.abs(np.asarray(full_decode(), dtype=float) - np.asarray(tglcourse_decode(), dtype=float)).mean()
    print(f"full decode, then LANCZOS:        {full_s * 1000:7.1f} ms")
    print(f"load_image_pil(size=256):         {ours_s * 1000:7.1f} ms = {full_s / ours_s:.1f}x faster; "
          f"mean absolute pixel difference {difference:.2f} of 255")


def bench_add_one(backbone, workdir: Path, n_indexed: int) -> None:
    print(f"\n== adding one image to {n_indexed:,} indexed ones")
    folder = workdir / "large"
    folder.mkdir()
    rng = np.random.default_rng(1)
    thumbnail = Image.new("RGB", (8, 8))
    for i in range(n_indexed):
        thumbnail.putpixel((0, 0), (i % 256, i // 256 % 256, i // 65536))  # every file different
        thumbnail.save(folder / f"small_{i:05d}.png")
    # A previous build, simulated: real rows for real files, with random unit vectors as embeddings.
    index = ImageIndex(folder, backbone=backbone)
    vectors = rng.standard_normal((n_indexed, backbone.embedding_dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = []
    for i, path in enumerate(sorted(folder.glob("small_*.png"))):
        info = path.stat()
        rows.append((path.name, info.st_size, info.st_mtime_ns, file_sha256(path), vectors[i].astype("<f4").tobytes(), 0.0))
    index.connection.execute("BEGIN")
    index.connection.executemany("INSERT INTO images VALUES (?, ?, ?, ?, ?, ?)", rows)
    index.connection.execute("COMMIT")
    index.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size_on_disk = (folder / INDEX_FILE_NAME).stat().st_size
    print(f"index file: {size_on_disk / n_indexed:,.0f} bytes per image on disk "
          f"({backbone.embedding_dim * 4:,} of them the float32 embedding)")

    start = time.perf_counter()
    keys, _ = index.vectors()
    print(f"loading {len(keys):,} embeddings from SQLite for search: {time.perf_counter() - start:.2f} s")

    start = time.perf_counter()
    scan_folder(folder)
    print(f"scanning {n_indexed:,} files (one stat each): {(time.perf_counter() - start) * 1000:.1f} ms")

    one_image, by_update, by_add = [], [], []
    with torch.inference_mode():
        for i in range(10):  # medians of 5 per method, because one measurement on a shared machine can be far off
            path = folder / f"new_photo_{i}.jpg"
            make_photo(path, rng)
            backbone.embed(backbone.preprocess(path))  # warm-up, and the file is in the page cache for both
            start = time.perf_counter()
            backbone.embed(backbone.preprocess(path))
            one_image.append(time.perf_counter() - start)
            start = time.perf_counter()
            if i % 2 == 0:
                report = index.update(quiet=True)
                by_update.append(time.perf_counter() - start)
            else:
                report = index.add(path)
                by_add.append(time.perf_counter() - start)
            assert report.embedded == [path.name], report
            assert report.unchanged == (n_indexed + i if i % 2 == 0 else 0), report
    one_image, by_update, by_add = (float(np.median(times)) for times in (one_image, by_update, by_add))
    print(f"embedding one image alone:  {one_image * 1000:7.1f} ms (median of 10)")
    print(f"update() adding that image: {by_update * 1000:7.1f} ms (median of 5) = {by_update / one_image:.1f}x one image "
          f"(scan, comparison with the index, hash, embed, commit)")
    print(f"add(path) adding it:        {by_add * 1000:7.1f} ms (median of 5) = {by_add / one_image:.1f}x one image "
          f"(lookup, hash, embed, commit)   (goal: about 1x)")
    index.close()


def random_unit_vectors(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        block = torch.randn(min(chunk, n - start), dim, generator=generator)
        out[start:start + len(block)] = F.normalize(block, dim=1).numpy()
    return out


def mean_latency_ms(search, queries) -> float:
    "Mean time of one query, sent one at a time."
    search(queries[:1])  # warm-up
    start = time.perf_counter()
    for q in queries:
        search(q[None])
    return 1000 * (time.perf_counter() - start) / len(queries)


def bench_vector_search(n: int, dim: int, n_queries: int = 20) -> None:
    print(f"\n== search over {n:,} random unit vectors of dimension {dim}")
    start = time.perf_counter()
    database = random_unit_vectors(n, dim, seed=n)
    rng = np.random.default_rng(0)
    random_queries = random_unit_vectors(n_queries, dim, seed=1)
    # Near-duplicate queries: database rows plus noise, cosine similarity about 0.94 to their row, like a resized photo.
    rows = rng.choice(n, n_queries, replace=False)
    near = database[rows] + 0.01 * rng.standard_normal((n_queries, dim)).astype(np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    print(f"vectors: {database.nbytes / 2**30:.2f} GiB ({dim * 4:,} bytes each), made in {time.perf_counter() - start:.1f} s")

    exact_ms = mean_latency_ms(lambda q: exact_top_k(database, q, 10), random_queries)
    _, true_random = exact_top_k(database, random_queries, 10)
    _, true_near = exact_top_k(database, near, 10)
    assert (true_near[:, 0] == rows).all()
    print(f"exact search (matrix product):  {exact_ms:8.2f} ms per query, recall@10 1.000 by definition")

    start = time.perf_counter()
    ivf = FaissIVFIndex(database)
    build_s = time.perf_counter() - start
    print(f"FAISS IVF-Flat build: nlist {ivf.nlist}, {build_s:.1f} s; peak memory of this process so far "
          f"{peak_rss_gb():.1f} GiB")
    default_nprobe = ivf.nprobe
    for nprobe in sorted({default_nprobe, 2 * default_nprobe, 4 * default_nprobe}):
        ivf.nprobe = nprobe
        ivf_ms = mean_latency_ms(lambda q: ivf.search(q, 10), random_queries)
        _, found_random = ivf.search(random_queries, 10)
        _, found_near = ivf.search(near, 10)
        label = " (default)" if nprobe == default_nprobe else ""
        print(f"FAISS nprobe {nprobe:4d}{label:10s} {ivf_ms:8.2f} ms per query = {exact_ms / ivf_ms:6.1f}x faster; "
              f"recall@10 random queries {recall_at_k(found_random, true_random):.3f}, "
              f"near-duplicate queries: recall@1 {recall_at_k(found_near[:, :1], true_near[:, :1]):.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a check that the script runs")
    parser.add_argument("--images", type=int, help="generated images to embed (default 300, quick 60)")
    parser.add_argument("--indexed", type=int, help="indexed images before adding one (default 10,000, quick 2,000)")
    parser.add_argument("--vectors", type=int, nargs="+", help="collection sizes for the search benchmark")
    args = parser.parse_args()
    n_images = args.images or (60 if args.quick else 300)
    n_indexed = args.indexed or (2_000 if args.quick else 10_000)
    sizes = args.vectors or ([20_000] if args.quick else [100_000, 1_000_000])

    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the start")
    backbone = efficientnet_lite0()
    workdir = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        bench_embedding(backbone, workdir, n_images)
        bench_large_photo_decoding(workdir)
        bench_add_one(backbone, workdir, n_indexed)
    finally:
        shutil.rmtree(workdir)
    for n in sizes:
        bench_vector_search(n, backbone.embedding_dim)
    print(f"\npeak memory of this process: {peak_rss_gb():.1f} GiB; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
