"""Build the corpus of awkward and broken image files that every image entry point is tested against.

`build_corpus(folder)` writes the files and returns {case name: Case}. A Case states what a correct
loader must produce: the RGB pixel expected at a probe position (for decodable files) or that the file
must be rejected with the project's UnreadableImageError naming it.
"""
import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Case:
    path: Path
    size: tuple | None = None      # expected (width, height) after decoding; None when the file must be rejected
    probes: dict = field(default_factory=dict)  # {(x, y): (r, g, b)} expected pixels after decoding
    tolerance: int = 0             # allowed absolute difference per channel (lossy formats)
    reason: str = ""               # for rejected files: a word the error's reason must contain

    @property
    def decodable(self) -> bool:
        return self.size is not None


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(width: int, height: int) -> bytes:
    "A PNG whose header claims width x height pixels, with a valid CRC and almost no data."
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b"")


def build_corpus(folder: Path) -> dict:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases = {}

    def add(name, filename, **kwargs):
        cases[name] = Case(folder / filename, **kwargs)
        return folder / filename

    (folder / "zero.jpg").write_bytes(b"")
    add("zero-byte jpg", "zero.jpg", reason="empty")

    good = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(good, format="JPEG", quality=95)
    (folder / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    add("truncated jpg", "truncated.jpg", reason="truncated")

    (folder / "text.jpg").write_bytes(b"this is a text file, not a JPEG\n" * 20)
    add("text named jpg", "text.jpg", reason="not")

    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(add("cmyk jpg", "cmyk.jpg", size=(32, 32), probes={(16, 16): (255, 0, 0)}, tolerance=40), quality=95)

    sixteen = Image.fromarray(np.full((20, 30), 40_000, dtype=np.uint16))
    sixteen.save(add("16-bit gray png", "gray16.png", size=(30, 20), probes={(5, 5): (156, 156, 156)}, tolerance=1))

    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 128))  # half-transparent red over the white background
    rgba.save(add("rgba png", "rgba.png", size=(10, 10), probes={(3, 3): (255, 127, 127)}, tolerance=1))

    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    palette.putpixel((0, 0), 1)
    palette.info["transparency"] = 0  # index 0 (blue) is transparent: it must come out white
    palette.save(add("palette png with transparency", "palette.png", size=(10, 10),
                     probes={(5, 5): (255, 255, 255), (0, 0): (0, 255, 0)}), transparency=0)

    bits = Image.new("1", (8, 8), 0)
    bits.putpixel((1, 1), 1)
    bits.save(add("1-bit png", "onebit.png", size=(8, 8), probes={(1, 1): (255, 255, 255), (4, 4): (0, 0, 0)}))

    Image.new("L", (24, 16), 100).save(add("grayscale jpg", "gray.jpg", size=(24, 16), probes={(8, 8): (100, 100, 100)}, tolerance=2), quality=95)

    frames = [Image.new("RGB", (12, 12), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(add("animated gif", "animated.gif", size=(12, 12), probes={(6, 6): (255, 0, 0)}, tolerance=2),
                   save_all=True, append_images=frames[1:], duration=100, loop=0)

    landscape = Image.new("RGB", (40, 20), (0, 0, 0))
    landscape.paste((255, 255, 255), (0, 0, 8, 8))  # white block at the top-left before rotation
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    landscape.save(add("exif rotate 90 jpg", "exif_rotate90.jpg", size=(20, 40),
                       probes={(16, 3): (255, 255, 255), (3, 36): (0, 0, 0)}, tolerance=30), exif=exif, quality=95)

    Image.new("RGB", (1, 1), (10, 200, 30)).save(add("1x1 png", "tiny_1x1.png", size=(1, 1), probes={(0, 0): (10, 200, 30)}))
    Image.new("RGB", (10, 10), (40, 50, 60)).save(add("10x10 png", "small_10x10.png", size=(10, 10), probes={(5, 5): (40, 50, 60)}))
    panorama = np.zeros((100, 300, 3), dtype=np.uint8)
    panorama[:, 200:] = (0, 120, 255)
    Image.fromarray(panorama).save(add("3:1 panorama png", "panorama.png", size=(300, 100), probes={(250, 50): (0, 120, 255), (50, 50): (0, 0, 0)}))

    (folder / "bomb.png").write_bytes(_bomb_png(30_000, 30_000))
    add("decompression bomb png", "bomb.png", reason="MAX_IMAGE_PIXELS")

    Image.new("RGB", (16, 16), (0, 128, 64)).save(add("webp", "lossless.webp", size=(16, 16), probes={(8, 8): (0, 128, 64)}), lossless=True)

    Image.new("RGB", (8, 8), (9, 99, 199)).save(add("non-Latin file name", "café 猫 кот.png", size=(8, 8), probes={(4, 4): (9, 99, 199)}))
    return cases


def unreadable_by_permission(folder: Path) -> Path:
    "Write a valid PNG that its owner cannot read (root still can)."
    path = Path(folder) / "no_permission.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)
    path.chmod(0)
    return path
