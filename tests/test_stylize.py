"""`stylize`, the `tglcourse stylize` command and the StylePanel: one implementation, provenance end to end."""
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

os.environ.setdefault("TGLCOURSE_OFFLINE", "1")

import tglcourse.stylize as stylize_module
from tglcourse.backbones import efficientnet_lite0, set_default_backbone
from tglcourse.provenance import ImageCredit, MissingLicenseWarning, Provenance, read_provenance
from tglcourse.stylize import (StylePanel, StylizeResult, cli_stylize, high_frequency_energy, stylize)
from tglcourse.utils import load_image_pil

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
CONTENT, STYLE = IMAGES / "chelsea.jpg", IMAGES / "swirling_strokes.jpg"
TGLCOURSE = str(Path(sys.executable).parent / "tglcourse")
OFFLINE_ENV = {**os.environ, "TGLCOURSE_OFFLINE": "1", "TGLCOURSE_BACKBONE": "efficientnet_lite0"}


@pytest.fixture(scope="module", autouse=True)
def bundled_backbone():
    set_default_backbone(efficientnet_lite0())


def run_tglcourse(*args, timeout=600):
    return subprocess.run([TGLCOURSE, *map(str, args)], capture_output=True, text=True, env=OFFLINE_ENV, timeout=timeout)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_command_output_read_back_by_credits(tmp_path, suffix):
    out = tmp_path / f"cat{suffix}"
    stylize_run = run_tglcourse("stylize", CONTENT, STYLE, "-o", out, "--size", 48, "--steps", 2, "--loss", "ot",
                         "--style-weight", 2.5, "--seed", 7)
    assert stylize_run.returncode == 0, stylize_run.stderr
    assert "\r" not in stylize_run.stdout                      # plain lines when the output is not a terminal
    assert "step 1/2  size 48" in stylize_run.stdout
    assert "step 2/2  size 48" in stylize_run.stdout
    assert f"saved {out}" in stylize_run.stdout

    credits_run = run_tglcourse("credits", out)
    assert credits_run.returncode == 0, credits_run.stderr
    assert 'content: chelsea.jpg "Chelsea the cat" by Stefan van der Walt, CC0-1.0' in credits_run.stdout
    assert 'style: swirling_strokes.jpg "Swirling brush strokes (generated painting)"' in credits_run.stdout
    for line in ("loss: ot", "style_weight: 2.5", "seed: 7", "size: 48", "steps_per_scale: 2", "scales: [48]",
                 "style_layers: [3, 6, 9, 11]", "backbone: efficientnet_lite0"):
        assert f"  {line}\n" in credits_run.stdout, line
    record = read_provenance(out)
    assert record.software.startswith("tglcourse ")
    assert record.kind == "stylize"
    assert min(Image.open(out).size) == 48


def test_command_gif_and_refusals(tmp_path):
    out, gif = tmp_path / "cat.png", tmp_path / "cat.gif"
    stylize_run = run_tglcourse("stylize", CONTENT, STYLE, "-o", out, "--gif", gif, "--size", 64, "--steps", 3, "--quiet")
    assert stylize_run.returncode == 0, stylize_run.stderr
    assert stylize_run.stdout == ""
    with Image.open(gif) as animation:
        assert animation.is_animated
        assert animation.n_frames >= 2
    assert read_provenance(gif) == read_provenance(out)

    before = out.read_bytes()
    again = run_tglcourse("stylize", CONTENT, STYLE, "-o", out, "--size", 64, "--steps", 1)
    assert again.returncode == 2
    assert "file exists; pass --overwrite" in again.stderr
    assert out.read_bytes() == before


def test_command_warns_about_unknown_licence(tmp_path):
    own = tmp_path / "holiday.png"
    load_image_pil(CONTENT, size=64).save(own)
    stylize_run = run_tglcourse("stylize", own, STYLE, "-o", tmp_path / "out.png", "--size", 32, "--steps", 1)
    assert stylize_run.returncode == 0, stylize_run.stderr
    warning_lines = [line for line in stylize_run.stderr.splitlines() if "no known licence" in line]
    assert len(warning_lines) == 1
    assert warning_lines[0].startswith("tglcourse stylize: warning: holiday.png (content image) has no known licence")
    assert "add a row for holiday.png to credits.csv" in warning_lines[0]
    assert read_provenance(tmp_path / "out.png").unlicensed_roles == ["content"]


def test_panel_result_read_back_by_credits(tmp_path):
    panel = StylePanel(IMAGES, content="chelsea.jpg", style="swirling_strokes.jpg", size=48, steps=2)
    panel.loss.value = "gram"
    assert panel.start()                                     # what the Run button does: a background thread
    result = panel.wait(timeout=600)
    assert result is panel.result
    assert not result.interrupted
    saved = panel.save(tmp_path / "panel.jpg")
    credits_run = run_tglcourse("credits", saved)
    assert credits_run.returncode == 0, credits_run.stderr
    assert "  loss: gram\n" in credits_run.stdout
    assert "  size: 48\n" in credits_run.stdout
    assert 'content: chelsea.jpg "Chelsea the cat"' in credits_run.stdout
    assert read_provenance(saved) == result.provenance


def test_panel_and_command_share_stylize(tmp_path, monkeypatch):
    calls = []

    def recording_stylize(content, style, **settings):
        calls.append((Path(content).name, Path(style).name, settings))
        image = Image.new("RGB", (32, 32))
        return StylizeResult(image, Provenance({"content": ImageCredit("a.png")}, {"size": settings["size"]}))

    monkeypatch.setattr(stylize_module, "stylize", recording_stylize)
    assert cli_stylize([str(CONTENT), str(STYLE), "-o", str(tmp_path / "a.png"), "--size", "96", "--steps", "5", "--quiet"]) == 0
    StylePanel(IMAGES, content="chelsea.jpg", style="swirling_strokes.jpg").run(size=96, steps=5)
    assert [c[:2] for c in calls] == [("chelsea.jpg", "swirling_strokes.jpg")] * 2
    shared = ("size", "steps", "loss", "style_weight", "preserve_colors")
    assert {k: calls[0][2][k] for k in shared} == {k: calls[1][2][k] for k in shared}
    assert calls[0][2]["size"] == 96
    assert calls[0][2]["steps"] == 5


def test_same_seed_same_image():
    first = stylize(CONTENT, STYLE, size=48, steps=3, seed=1, quiet=True)
    second = stylize(CONTENT, STYLE, size=48, steps=3, seed=1, quiet=True)
    other = stylize(CONTENT, STYLE, size=48, steps=3, seed=2, quiet=True)
    assert first.image.tobytes() == second.image.tobytes()
    assert first.image.tobytes() != other.image.tobytes()


def test_average_smoother_than_last_iterate():
    settings = dict(size=96, steps=12, scales=[96], lr=0.05, quiet=True)
    last = stylize(CONTENT, STYLE, ema_decay=0.0, **settings)
    averaged = stylize(CONTENT, STYLE, ema_decay=0.9, **settings)
    assert high_frequency_energy(averaged.image) < 0.9 * high_frequency_energy(last.image)


def test_coarse_to_fine_history():
    result = stylize(CONTENT, STYLE, size=128, steps=2, quiet=True)
    assert result.history["size"] == [64, 64, 128, 128]
    assert result.provenance.settings["scales"] == [64, 128]
    assert result.image.size == (192, 128)  # chelsea.jpg is 451 x 300


def test_ctrl_c_keeps_the_image_so_far():
    def interrupt(progress):
        if progress.step == 3:
            raise KeyboardInterrupt

    result = stylize(CONTENT, STYLE, size=128, steps=2, callback=interrupt, quiet=True)  # scales 64 and 128
    assert (result.interrupted, result.steps_done) == (True, 3)
    assert min(result.image.size) == 128
    assert result.provenance.settings["interrupted"] is True


def test_in_memory_image_warns_every_time():
    array_content = torch.rand(1, 3, 40, 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            result = stylize(array_content, STYLE, size=32, steps=1, quiet=True)
    in_memory = [w for w in caught if issubclass(w.category, MissingLicenseWarning)]
    assert len(in_memory) == 2  # nothing identifies an unnamed image, so each run warns again
    assert "an image in memory (content image)" in str(in_memory[0].message)
    assert result.provenance.sources["content"].file == ""


def test_command_ctrl_c_saves_image_so_far(tmp_path):
    out = tmp_path / "partial.png"
    command = [TGLCOURSE, "stylize", str(CONTENT), str(STYLE), "-o", str(out), "--size", "48", "--steps", "400"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=OFFLINE_ENV)
    try:
        for line in process.stdout:
            if line.startswith("step 1/400"):
                process.send_signal(signal.SIGINT)    # what Ctrl-C sends
                break
        stdout, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "saved the image so far" in stderr
    record = read_provenance(out)
    assert record.settings["interrupted"] is True
    assert 1 <= record.settings["steps_done"] < 400


def test_command_rejects_huge_size_and_folder_output(tmp_path):
    huge = run_tglcourse("stylize", CONTENT, STYLE, "-o", tmp_path / "out.png", "--size", 100000)
    assert huge.returncode == 2
    assert "tglcourse stylize: error: size: expected at most 4096 pixels, got 100000" in huge.stderr
    assert "Traceback" not in huge.stderr
    folder = run_tglcourse("stylize", CONTENT, STYLE, "-o", tmp_path)
    assert folder.returncode == 2
    assert f"tglcourse stylize: error: output {tmp_path}: is a folder; give a file name such as" in folder.stderr
    assert list(tmp_path.iterdir()) == []


def test_command_rejects_long_strip(tmp_path):
    strip = tmp_path / "strip.png"
    Image.new("RGB", (20000, 3), (200, 100, 50)).save(strip)
    done = run_tglcourse("stylize", strip, STYLE, "-o", tmp_path / "out.png", "--size", 64, "--steps", 1)
    assert done.returncode == 1
    assert ("tglcourse stylize: error: content image strip.png: at size=64 its 20000x3 pixels would become 426667x64, "
            "27,306,688 pixels, more than the 4096x4096 = 16,777,216 that stylize allows.") in done.stderr
    assert not (tmp_path / "out.png").exists()
