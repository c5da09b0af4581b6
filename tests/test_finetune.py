"""Checks of `tglcourse finetune` on folders of real photos, as a user would run it, and of its handling of bad data."""
import hashlib
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from tglcourse import finetune
from tglcourse.cli import main
from without_file_override import DROP_FILE_PERMISSION_OVERRIDE

PHOTOS = {"cat": skdata.chelsea, "coffee": skdata.coffee, "rocket": skdata.rocket, "astronaut": skdata.astronaut}
FAST = ["--size", "32", "--epochs", "1", "--freeze-epochs", "1", "--batch-size", "4"]


def write_photo_folder(root, per_class=5, seed=0):
    """Write `per_class` random crops of one scikit-image photo per class as JPEGs in root/<class>/."""
    rng = np.random.default_rng(seed)
    for name, load in PHOTOS.items():
        photo = Image.fromarray(load())
        (root / name).mkdir(parents=True)
        w, h = photo.size
        for i in range(per_class):
            side = int(min(w, h) * rng.uniform(0.6, 1.0))
            left, top = rng.integers(0, w - side + 1), rng.integers(0, h - side + 1)
            crop = photo.crop((left, top, left + side, top + side)).resize((64, 64))
            crop.save(root / name / f"{name}-{i}.jpg", quality=90)
    return root


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def forbid(monkeypatch, *names):
    """Make the named functions of tglcourse.finetune fail the test when called, to show a check runs before them."""
    for name in names:
        def fail(*args, name=name, **kwargs):
            raise AssertionError(f"finetune.{name} was called")
        monkeypatch.setattr(finetune, name, fail)


def test_cli_trains_and_saves_on_photos(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    output = tmp_path / "models" / "photos.pt"
    assert main(["finetune", str(photos), *FAST, "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "16 training images and 4 validation images in 4 classes: astronaut, cat, coffee, rocket" in out
    assert re.search(r"whole network: epoch 1/1 .* accuracy \d\.\d{3}", out)
    final = out.strip().splitlines()[-1]
    assert re.fullmatch(rf"validation accuracy \d\.\d{{3}} on 4 images; model saved to {re.escape(str(output))}", final)
    model = finetune.load_classifier(output)
    assert model.classes == ["astronaut", "cat", "coffee", "rocket"]
    assert model.image_size == 32
    predictions = finetune.predict(model, sorted(photos.glob("cat/*.jpg")))
    assert len(predictions) == 5
    assert all(label in model.classes and 0 < p <= 1 for label, p in predictions)


def test_cli_default_output_in_current_folder(tmp_path, monkeypatch, capsys):
    photos = write_photo_folder(tmp_path / "holiday")
    monkeypatch.chdir(tmp_path)
    assert finetune.cli_finetune([str(photos), *FAST, "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1  # --quiet leaves only the final line
    assert lines[0].endswith("model saved to holiday-finetuned.pt")
    assert (tmp_path / "holiday-finetuned.pt").is_file()


def test_cli_never_overwrites_without_force(tmp_path, monkeypatch, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    output = tmp_path / "model.pt"
    output.write_bytes(b"someone's file")
    with monkeypatch.context() as patch:
        forbid(patch, "make_loaders", "efficientnet_lite0")  # refused before reading images or loading the network
        assert finetune.cli_finetune([str(photos), *FAST, "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert f"tglcourse finetune: error: {output}: file exists; pass --overwrite to replace it" in err
    assert output.read_bytes() == b"someone's file"
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(output), "--force", "--quiet"]) == 0
    assert finetune.load_classifier(output).classes == ["astronaut", "cat", "coffee", "rocket"]


def test_cli_overwrite_replaces_model(tmp_path, capsys):
    """--overwrite, as stylize spells it, means the same as --force."""
    photos = write_photo_folder(tmp_path / "photos")
    output = tmp_path / "model.pt"
    output.write_bytes(b"old model")
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(output), "--overwrite", "--quiet"]) == 0
    assert finetune.load_classifier(output).classes == ["astronaut", "cat", "coffee", "rocket"]
    assert "--overwrite" in finetune._finetune_parser().format_help()


def test_cli_skips_bad_files_with_one_warning(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    (photos / "cat" / "notes.txt").write_text("not an image")
    (photos / "coffee" / "cut.jpg").write_bytes((photos / "coffee" / "coffee-0.jpg").read_bytes()[:200])
    (photos / "rocket" / "empty.png").write_bytes(b"")
    Image.fromarray(skdata.chelsea()).convert("L").save(photos / "cat" / "gray.png")
    Image.fromarray(skdata.chelsea()).convert("RGBA").save(photos / "cat" / "transparent.png")
    Image.fromarray(skdata.chelsea()).convert("P").save(photos / "cat" / "palette.gif")
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(tmp_path / "m.pt")]) == 0
    out, err = capsys.readouterr()
    warning_lines = [line for line in err.splitlines() if "warning:" in line]
    assert warning_lines == [f"tglcourse finetune: warning: skipped 3 unreadable files under {photos}:"]
    for name in ("notes.txt", "cut.jpg", "empty.png"):
        assert name in err
    # Python's own format would add the file name, the line number and the category.
    assert "UserWarning" not in err
    assert "finetune.py:" not in err
    # 8 cats (2 held back) and 5 of each other class (1 held back): the gray, RGBA and palette images all count.
    assert "18 training images and 5 validation images" in out


def test_cli_single_image_class_trains(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    (photos / "horse").mkdir()
    Image.fromarray(skdata.horse()).save(photos / "horse" / "horse.png")  # a 1-bit silhouette
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(tmp_path / "m.pt")]) == 0
    assert "17 training images and 4 validation images in 5 classes" in capsys.readouterr().out
    assert "horse" in finetune.load_classifier(tmp_path / "m.pt").classes


def test_cli_only_single_images_reports_no_accuracy(tmp_path, capsys):
    for name, load in PHOTOS.items():
        (tmp_path / "few" / name).mkdir(parents=True)
        Image.fromarray(load()).resize((48, 48)).save(tmp_path / "few" / name / "only.jpg")
    assert finetune.cli_finetune([str(tmp_path / "few"), *FAST, "--output", str(tmp_path / "m.pt")]) == 0
    final = capsys.readouterr().out.strip().splitlines()[-1]
    assert final.startswith("validation accuracy not measured: no class has enough images to hold one back at "
                            "--valid-fraction 0.2;")


def test_cli_empty_class_folder_is_an_error(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    (photos / "dog").mkdir()
    (photos / "dog" / "readme.txt").write_text("photos to come")
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err
    assert f"{photos / 'dog'}: class folder 'dog' contains no readable image" in err
    assert "add images to it or remove it" in err
    assert not (tmp_path / "m.pt").exists()


def test_cli_uses_given_train_valid_split(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=4)
    split = tmp_path / "split"
    for path in sorted(photos.glob("*/*.jpg")):
        half = "valid" if path.stem.endswith("-3") else "train"
        (split / half / path.parent.name).mkdir(parents=True, exist_ok=True)
        path.rename(split / half / path.parent.name / path.name)
    Image.open(split / "train" / "cat" / "cat-0.jpg").convert("L").save(split / "valid" / "cat" / "gray.png")
    assert finetune.cli_finetune([str(split), *FAST, "--output", str(tmp_path / "m.pt")]) == 0
    assert "12 training images and 5 validation images in 4 classes" in capsys.readouterr().out


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert finetune.cli_finetune([]) == 2
    assert finetune.cli_finetune([str(tmp_path), "--epochs", "0"]) == 2
    assert "expected a positive whole number, got '0'" in capsys.readouterr().err
    assert finetune.cli_finetune([str(tmp_path), "--valid-fraction", "1"]) == 2
    assert finetune.cli_finetune([str(tmp_path / "missing"), "--output", str(tmp_path / "m.pt")]) == 1
    assert "missing: folder not found" in capsys.readouterr().err
    assert main(["finetune", "--help"]) == 0
    assert "--freeze-epochs" in capsys.readouterr().out


def test_progress_bar_only_in_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert finetune._progress_bar(10, "x", quiet=False) is None  # a log file gets plain lines
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = finetune._progress_bar(10, "x", quiet=False)
    assert bar is not None
    bar.close()
    assert finetune._progress_bar(10, "x", quiet=True) is None


def test_saved_file_loads_with_weights_only(tmp_path):
    model = finetune.make_classifier(finetune.efficientnet_lite0(), ["a", "b", "c"], image_size=40)
    path = finetune.save_classifier(model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == finetune.MODEL_FORMAT
    assert payload["classes"] == ["a", "b", "c"]
    assert payload["backbone"] == "efficientnet_lite0"
    first = digest(path)
    with pytest.raises(FileExistsError, match="file exists"):
        finetune.save_classifier(model, path)
    assert digest(path) == first


@pytest.mark.parametrize("value", ["-1", "0", "0.0", "nan", "inf", "-inf", "fast"])
def test_cli_rejects_bad_learning_rate(tmp_path, value, capsys):
    assert finetune.cli_finetune([str(tmp_path), f"--lr={value}"]) == 2  # "--lr -inf" would read -inf as an option
    assert f"argument --lr: expected a positive finite number such as 0.001, got '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["99999999999999999999999", "-1", str(2**32), "1.5"])
def test_cli_rejects_seed_out_of_range(tmp_path, value, capsys):
    assert finetune.cli_finetune([str(tmp_path), "--seed", value]) == 2
    assert f"argument --seed: expected a whole number from 0 to 4294967295, got '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1025", "5000", "100000"])
def test_cli_rejects_size_above_maximum(tmp_path, monkeypatch, value, capsys):
    """A size such as 5000 for 500 would fill memory, or overflow the pixel limit, long after the command started."""
    photos = write_photo_folder(tmp_path / "photos", per_class=2)
    forbid(monkeypatch, "make_loaders", "efficientnet_lite0")
    assert finetune.cli_finetune([str(photos), "--size", value, "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert (f"tglcourse finetune: error: argument --size: {value} is above the maximum image size of 1024 pixels; "
            f"choose a smaller --size, such as the default 128") in err
    assert "TGLCOURSE_MAX_IMAGE_PIXELS" not in err
    assert not (tmp_path / "m.pt").exists()


def test_cli_size_maximum_is_accepted(tmp_path, monkeypatch):
    parser = finetune._finetune_parser()
    assert parser.parse_args([str(tmp_path), "--size", "1024"]).size == 1024
    assert "at most 1024" in parser.format_help()
    # The check reads MAX_IMAGE_SIZE when it runs, so raising the constant allows larger sizes.
    monkeypatch.setattr(finetune, "MAX_IMAGE_SIZE", 2048)
    assert parser.parse_args([str(tmp_path), "--size", "2000"]).size == 2000


def test_cli_trains_with_largest_seed(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=3)
    output = tmp_path / "m.pt"
    assert finetune.cli_finetune([str(photos), *FAST, "--seed", str(2**32 - 1), "--output", str(output), "-q"]) == 0
    assert output.is_file()


def test_cli_rejects_text_valid_fraction(tmp_path, capsys):
    assert finetune.cli_finetune([str(tmp_path), "--valid-fraction", "half"]) == 2
    assert "argument --valid-fraction: expected a number in [0, 1), got 'half'" in capsys.readouterr().err


def test_cli_output_folder_rejected_before_training(tmp_path, monkeypatch, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=2)
    forbid(monkeypatch, "make_loaders", "efficientnet_lite0")
    for extra in ([], ["--overwrite"]):
        assert finetune.cli_finetune([str(photos), *FAST, "-o", str(tmp_path), *extra]) == 1
        err = capsys.readouterr().err
        assert err == (f"tglcourse finetune: error: {tmp_path}: is a folder; --output needs a file path, "
                       f"such as {tmp_path / 'model.pt'}\n")


def test_cli_output_under_a_file_rejected_before_training(tmp_path, monkeypatch, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=2)
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    forbid(monkeypatch, "make_loaders", "efficientnet_lite0")
    output = tmp_path / "notes.txt" / "models" / "m.pt"
    assert finetune.cli_finetune([str(photos), *FAST, "-o", str(output)]) == 1
    err = capsys.readouterr().err
    assert (f"{output}: cannot create the folder {output.parent}, because {tmp_path / 'notes.txt'} is a file"
            in err)


def test_cli_output_in_read_only_folder_rejected(tmp_path):
    photos = write_photo_folder(tmp_path / "photos", per_class=2)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # A subprocess without root's power to write anywhere, so the folder's mode applies even under root.
    script = DROP_FILE_PERMISSION_OVERRIDE + (
        "from tglcourse import finetune\n"
        "finetune.make_loaders = finetune.efficientnet_lite0 = None  # the check must come before data and network\n"
        "sys.exit(finetune.cli_finetune(sys.argv[1:]))\n")
    try:
        done = subprocess.run([sys.executable, "-c", script, str(photos), *FAST, "-o", str(locked / "m.pt")],
                              capture_output=True, text=True, timeout=300)
    finally:
        locked.chmod(0o700)
    if "cannot drop capabilities" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 1, done.stderr
    assert f"no permission to write in the folder {locked}" in done.stderr
    assert list(locked.iterdir()) == []


def test_cli_one_class_folder_fails_before_network(tmp_path, monkeypatch, capsys):
    """13 photos at the top and 1 in a subfolder: the error explains the layout and counts the ignored photos."""
    pics = tmp_path / "pics"
    (pics / "sub dir").mkdir(parents=True)
    photo = Image.fromarray(skdata.chelsea()).resize((64, 48))
    for i in range(13):
        photo.rotate(i).save(pics / f"photo-{i:02d}.jpg")
    photo.save(pics / "sub dir" / "photo.jpg")
    forbid(monkeypatch, "efficientnet_lite0")
    assert finetune.cli_finetune([str(pics), *FAST, "-o", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err
    assert f"{pics}: found 1 class folder ('sub dir'), but a classifier needs at least 2 classes." in err
    assert f"Expected {pics}/<class name>/<images> with one folder per class, or {pics}/train/<class name>/<images> " \
           f"and {pics}/valid/<class name>/<images>." in err
    assert f"13 images directly in {pics} were ignored, because images must be inside a class folder." in err
    assert not (tmp_path / "m.pt").exists()


def test_cli_warns_about_loose_images(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=3)
    for name in ("stray-1.jpg", "stray-2.png"):
        Image.fromarray(skdata.coffee()).resize((64, 64)).save(photos / name)
    (photos / "CREDITS.md").write_text("photos from scikit-image")  # not an image, so not counted
    assert finetune.cli_finetune([str(photos), *FAST, "-o", str(tmp_path / "m.pt")]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(f"tglcourse finetune: warning: ignored 2 images directly in {photos}, because training "
                          f"reads only the images inside class folders: {photos}/<class name>/<images>")
    assert "UserWarning" not in err
    assert "8 training images and 4 validation images in 4 classes" in out


def test_cli_quiet_still_prints_warnings(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=3)
    (photos / "cat" / "notes.txt").write_text("not an image")
    assert finetune.cli_finetune([str(photos), *FAST, "-o", str(tmp_path / "m.pt"), "-q"]) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1
    assert out.startswith("validation accuracy ")
    assert err.splitlines()[0] == f"tglcourse finetune: warning: skipped 1 unreadable file under {photos}:"
    # The -q help mentions that warnings are still printed.
    assert "warnings" in finetune._finetune_parser().format_help()


def test_cli_valid_fraction_zero_turns_validation_off(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=3)
    assert finetune.cli_finetune([str(photos), *FAST, "-o", str(tmp_path / "m.pt"), "--valid-fraction", "0"]) == 0
    out = capsys.readouterr().out
    assert "12 training images and 0 validation images in 4 classes" in out
    final = out.strip().splitlines()[-1]
    assert final == ("validation accuracy not measured: --valid-fraction 0 turned validation off; "
                     f"model saved to {tmp_path / 'm.pt'}")
    # The epoch lines print "no validation" in place of a NaN validation loss and accuracy.
    epoch_lines = [line for line in out.splitlines() if ": epoch " in line]
    assert len(epoch_lines) == 2
    for line, phase in zip(epoch_lines, ("head only", "whole network")):
        assert re.fullmatch(rf"{phase}: epoch 1/1  train loss \d+\.\d{{3}}  no validation  \(\d+\.\d s\)", line), line
        assert "nan" not in line, line


def test_cli_counts_in_singular(tmp_path, capsys):
    """3 cats and 2 coffees: round(3 * 0.2) = 1 cat and round(2 * 0.2) = 0 coffees are held back."""
    photos = write_photo_folder(tmp_path / "photos", per_class=3)
    for name in ("astronaut", "rocket"):
        for path in (photos / name).iterdir():
            path.unlink()
        (photos / name).rmdir()
    (photos / "coffee" / "coffee-2.jpg").unlink()
    (photos / "coffee" / "notes.txt").write_text("not an image")
    assert finetune.cli_finetune([str(photos), *FAST, "-o", str(tmp_path / "m.pt")]) == 0
    out, err = capsys.readouterr()
    assert "4 training images and 1 validation image in 2 classes: cat, coffee" in out
    assert re.search(r"^validation accuracy \d\.\d{3} on 1 image; model saved to ", out, re.MULTILINE)
    assert f"skipped 1 unreadable file under {photos}:" in err


def test_cli_diverging_run_saves_nothing(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos", per_class=3)
    output = tmp_path / "m.pt"
    assert finetune.cli_finetune([str(photos), *FAST, "-o", str(output), "--lr", "1e30", "-q"]) == 1
    err = capsys.readouterr().err
    # The training loss or, after the last step, the weights and outputs show the divergence.
    assert err.startswith("tglcourse finetune: error: whole network: the ")
    assert err.rstrip().endswith("in epoch 1; lower the learning rate")
    assert not output.exists()
