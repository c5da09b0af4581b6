"""Provenance records in image files: round trips for every format, the `tglcourse credits` command, and damaged records."""
import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from tglcourse import __version__
from tglcourse.provenance import (CREDIT_COLUMNS, ImageCredit, Provenance, ProvenanceFormatError, cli_credits,
                                  find_credit, load_credited_image, read_credits, read_provenance,
                                  save_with_provenance, xmp_packet)

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
TGLCOURSE = str(Path(sys.executable).parent / "tglcourse")
SUFFIXES = [".png", ".jpg", ".webp", ".gif"]


def sample_provenance(**credit_fields) -> Provenance:
    content = ImageCredit("chelsea.jpg", "Chelsea the cat", "Stefan van der Walt", "scikit-image", "CC0-1.0",
                          "https://creativecommons.org/publicdomain/zero/1.0/", "ab" * 32)
    style = ImageCredit(**{"file": "mine.png", **credit_fields})
    settings = {"loss": "vincent", "style_weight": 1.0, "style_layers": [3, 6, 9, 11], "steps_per_scale": 60,
                "size": 512, "backbone": "efficientnet_lite0"}
    return Provenance({"content": content, "style": style}, settings, kind="stylize")


def picture() -> Image.Image:
    return Image.new("RGB", (40, 30), (30, 120, 200))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_every_format(tmp_path, suffix):
    record = sample_provenance(author="Mikael Häggström", license="CC-BY-4.0")
    saved = save_with_provenance(picture(), tmp_path / f"out{suffix}", record)
    back = read_provenance(saved)
    assert back == record
    assert back.software == f"tglcourse {__version__}"


text_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # any character that UTF-8 can encode
more_text = st.text(max_size=40)                                               # lone surrogates too


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=text_values, author=more_text, source=text_values, license=text_values)
def test_round_trip_any_text(tmp_path, title, author, source, license):
    record = sample_provenance(title=title, author=author, source=source, license=license)
    for suffix in SUFFIXES:
        path = tmp_path / f"any{suffix}"
        save_with_provenance(picture(), path, record, overwrite=True)
        assert read_provenance(path) == record, suffix


def test_jpeg_xmp_and_exif_are_standard(tmp_path):
    saved = save_with_provenance(picture(), tmp_path / "out.jpg", sample_provenance(title="<&> \"quoted\""))
    with Image.open(saved) as im:
        xmp, exif = im.info["xmp"], im.getexif()
    root = ElementTree.fromstring(xmp.decode("utf-8")[xmp.decode("utf-8").index("<x:xmpmeta"):xmp.decode("utf-8").index("<?xpacket end")])
    namespaces = {"dc": "http://purl.org/dc/elements/1.1/", "xmp": "http://ns.adobe.com/xap/1.0/",
                  "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
    description = root.find(".//dc:description/rdf:Alt/rdf:li", namespaces).text
    assert "Chelsea the cat" in description
    assert "<&> \"quoted\"" in description
    assert root.find(".//xmp:CreatorTool", namespaces).text == f"tglcourse {__version__}"
    assert exif[0x0131] == f"tglcourse {__version__}"   # EXIF Software
    assert "chelsea.jpg" in exif[0x010E]                  # EXIF ImageDescription


def test_png_record_is_plain_json_text(tmp_path):
    saved = save_with_provenance(picture(), tmp_path / "out.png", sample_provenance())
    with Image.open(saved) as im:
        record = json.loads(im.text["tglcourse:provenance"])
        description = im.text["Description"]
    assert record["schema"] == "tglcourse-provenance/1"
    assert record["settings"]["style_layers"] == [3, 6, 9, 11]
    assert description.startswith(f"Made with tglcourse {__version__} (stylize) from content: chelsea.jpg")


def test_existing_file_is_never_replaced(tmp_path):
    target = tmp_path / "mine.png"
    target.write_bytes(b"my own work")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        save_with_provenance(picture(), target, sample_provenance())
    assert target.read_bytes() == b"my own work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png"]  # no temporary file left behind


def test_jpeg_record_too_large_for_one_segment(tmp_path):
    record = Provenance({f"tile {i}": ImageCredit("x" * 300 + f"{i}.jpg") for i in range(300)})
    with pytest.raises(ValueError, match="save as PNG instead"):
        save_with_provenance(picture(), tmp_path / "big.jpg", record)
    assert not (tmp_path / "big.jpg").exists()


def test_damaged_png_record_raises(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("tglcourse:provenance", '{"schema": "tglcourse-provenance/1", "sources": [1, 2]}')
    picture().save(tmp_path / "damaged.png", pnginfo=info)
    with pytest.raises(ProvenanceFormatError, match="damaged.png: tglcourse provenance record: 'sources' must map roles"):
        read_provenance(tmp_path / "damaged.png")
    assert cli_credits([str(tmp_path / "damaged.png")]) == 1
    info = PngImagePlugin.PngInfo()
    info.add_text("tglcourse:provenance", "{not json")
    picture().save(tmp_path / "not_json.png", pnginfo=info)
    with pytest.raises(ProvenanceFormatError, match="not_json.png: not a tglcourse provenance record: invalid JSON"):
        read_provenance(tmp_path / "not_json.png")


def test_foreign_xmp_is_no_record(tmp_path):
    foreign = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    picture().save(tmp_path / "camera.jpg", xmp=foreign)
    assert read_provenance(tmp_path / "camera.jpg") is None


def test_xmp_with_entities_is_rejected(tmp_path):
    packet = xmp_packet(sample_provenance()).replace(b"<x:xmpmeta", b'<!DOCTYPE x [<!ENTITY e "e">]><x:xmpmeta', 1)
    picture().save(tmp_path / "entities.jpg", xmp=packet)
    with pytest.raises(ProvenanceFormatError, match="declares a DOCTYPE"):
        read_provenance(tmp_path / "entities.jpg")


def test_every_lesson_image_loads_with_its_credit():
    table = read_credits(IMAGES)
    for name, row in table.items():
        image = load_credited_image(IMAGES / name, size=32)
        credit = image.info["tglcourse_credit"]
        assert credit.has_license, name
        assert credit.title == row.title
        assert credit.license == row.license
        assert len(credit.sha256) == 64
        assert credit.sha256 == find_credit(IMAGES / name).sha256


def test_credit_columns_match_the_lesson_table():
    header = (IMAGES / "credits.csv").read_text(encoding="utf-8").splitlines()[0]
    assert tuple(header.split(",")) == CREDIT_COLUMNS


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_credits_command_prints_the_record(tmp_path, suffix):
    saved = save_with_provenance(picture(), tmp_path / f"out{suffix}", sample_provenance(license=""))
    env = {**os.environ, "TGLCOURSE_OFFLINE": "1"}
    credits_run = subprocess.run([TGLCOURSE, "credits", str(saved)], capture_output=True, text=True, env=env, timeout=120)
    assert credits_run.returncode == 0, credits_run.stderr
    assert 'content: chelsea.jpg "Chelsea the cat" by Stefan van der Walt, CC0-1.0' in credits_run.stdout
    assert "style: mine.png, licence unknown" in credits_run.stdout
    assert "style_layers: [3, 6, 9, 11]" in credits_run.stdout
    assert "warning: no known licence for the style image\n" in credits_run.stdout + "\n"
    as_json = subprocess.run([TGLCOURSE, "credits", "--json", str(saved)], capture_output=True, text=True, env=env, timeout=120)
    assert Provenance.from_json(as_json.stdout) == read_provenance(saved)


def test_credits_command_without_record(tmp_path):
    picture().save(tmp_path / "plain.png")
    credits_run = subprocess.run([TGLCOURSE, "credits", str(tmp_path / "plain.png"), str(IMAGES / "coffee.jpg")],
                           capture_output=True, text=True, timeout=120)
    assert credits_run.returncode == 1
    assert "plain.png: no tglcourse provenance recorded" in credits_run.stderr
    assert "coffee.jpg" in credits_run.stdout
    assert "Rachel Michetti" in credits_run.stdout


def png_chunk(chunk_type: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", zlib.crc32(chunk_type + data))


def huge_png(record: Provenance, after_pixels: bool) -> bytes:
    "A PNG of a few hundred bytes whose header claims 30000 x 30000 RGB pixels, with `record` in an iTXt chunk."
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # width, height, bit depth, RGB, no interlace
    text = png_chunk(b"iTXt", b"tglcourse:provenance\0\1\0\0\0" + zlib.compress(record.to_json().encode()))
    pixels = png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    chunks = [pixels, text] if after_pixels else [text, pixels]
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + b"".join(chunks) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize("after_pixels", [False, True])
@pytest.mark.parametrize("limit", ["none", "1000"])
def test_credits_command_reads_huge_png(tmp_path, after_pixels, limit):
    record = sample_provenance(license="")
    huge = tmp_path / "huge.png"
    huge.write_bytes(huge_png(record, after_pixels))
    env = {**os.environ, "TGLCOURSE_OFFLINE": "1", "TGLCOURSE_MAX_IMAGE_PIXELS": limit}
    credits_run = subprocess.run([TGLCOURSE, "credits", str(huge)], capture_output=True, text=True, env=env, timeout=120)
    assert credits_run.returncode == 0, credits_run.stderr
    assert credits_run.stderr == ""
    assert 'content: chelsea.jpg "Chelsea the cat" by Stefan van der Walt, CC0-1.0' in credits_run.stdout
    assert "style_layers: [3, 6, 9, 11]" in credits_run.stdout
    as_json = subprocess.run([TGLCOURSE, "credits", "--json", str(huge)], capture_output=True, text=True, env=env, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    assert Provenance.from_json(as_json.stdout) == record


def test_credits_command_rejects_unknown_version(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("tglcourse:provenance", '{"schema":"tglcourse-provenance/99"}')
    picture().save(tmp_path / "v99.png", pnginfo=info)
    env = {**os.environ, "TGLCOURSE_OFFLINE": "1"}
    for options in ([], ["--json"]):
        credits_run = subprocess.run([TGLCOURSE, "credits", *options, str(tmp_path / "v99.png")],
                                     capture_output=True, text=True, env=env, timeout=120)
        assert credits_run.returncode == 1, options
        assert credits_run.stdout == "", options
        assert credits_run.stderr.startswith(f"tglcourse credits: error: {tmp_path / 'v99.png'}: unsupported tglcourse "
                                             "provenance record version 'tglcourse-provenance/99'"), credits_run.stderr
        assert f"tglcourse {__version__} reads only 'tglcourse-provenance/1'" in credits_run.stderr
        assert "A newer version of tglcourse may read it" in credits_run.stderr


class ImageHandler(http.server.BaseHTTPRequestHandler):
    "Serve a lesson image at /ok, and a redirect to it at /redir."
    image = (IMAGES / "chelsea.jpg").read_bytes()

    def do_GET(self):
        if self.path == "/redir":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.end_headers()
        elif self.path == "/ok":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(self.image)))
            self.end_headers()
            self.wfile.write(self.image)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass  # keep the test output quiet


@pytest.fixture
def image_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ImageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_stylize_warning_names_url(tmp_path, image_server):
    content, style = f"{image_server}/ok", f"{image_server}/redir"
    env = {**os.environ, "TGLCOURSE_OFFLINE": "1", "TGLCOURSE_BACKBONE": "efficientnet_lite0", "no_proxy": "*",
           "NO_PROXY": "*"}  # the local server, even where a proxy is configured
    stylize_run = subprocess.run([TGLCOURSE, "stylize", content, style, "-o", str(tmp_path / "out.png"),
                                  "--size", "32", "--steps", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert stylize_run.returncode == 0, stylize_run.stderr
    warning_lines = [line for line in stylize_run.stderr.splitlines() if "no known licence" in line]
    assert len(warning_lines) == 2, stylize_run.stderr
    assert warning_lines[0].startswith(f"tglcourse stylize: warning: {content} (content image) has no known licence")
    assert warning_lines[1].startswith(f"tglcourse stylize: warning: {style} (style image) has no known licence")
    for line in warning_lines:
        assert "download it into a folder, add a row for the file to credits.csv there" in line
        assert "pass the file's path instead of the URL" in line
        assert "in the image's folder" not in line
    record = read_provenance(tmp_path / "out.png")
    assert record.sources["content"].source == content
    assert record.sources["style"].source == style
