"""Checks of `tglcourse finetune` on folders of real photos, as a user would run it, and of its handling of bad data."""
import hashlib
import io
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from tglcourse import finetune
from tglcourse.cli import main

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


def test_cli_trains_and_saves_on_photos(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    output = tmp_path / "models" / "photos.pt"
    assert main(["finetune", str(photos), *FAST, "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "16 training and 4 validation images in 4 classes: astronaut, cat, coffee, rocket" in out
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


def test_cli_never_overwrites_without_force(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    output = tmp_path / "model.pt"
    output.write_bytes(b"someone's file")
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(output)]) == 1
    assert "model.pt: file exists; pass --force" in capsys.readouterr().err
    assert output.read_bytes() == b"someone's file"
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(output), "--force", "--quiet"]) == 0
    assert finetune.load_classifier(output).classes == ["astronaut", "cat", "coffee", "rocket"]


def test_cli_skips_bad_files_with_one_warning(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    (photos / "cat" / "notes.txt").write_text("not an image")
    (photos / "coffee" / "cut.jpg").write_bytes((photos / "coffee" / "coffee-0.jpg").read_bytes()[:200])
    (photos / "rocket" / "empty.png").write_bytes(b"")
    Image.fromarray(skdata.chelsea()).convert("L").save(photos / "cat" / "gray.png")
    Image.fromarray(skdata.chelsea()).convert("RGBA").save(photos / "cat" / "transparent.png")
    Image.fromarray(skdata.chelsea()).convert("P").save(photos / "cat" / "palette.gif")
    with pytest.warns(UserWarning) as caught:
        assert finetune.cli_finetune([str(photos), *FAST, "--output", str(tmp_path / "m.pt")]) == 0
    skipped = [w for w in caught if "unreadable file" in str(w.message)]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert "skipped 3 unreadable file(s)" in message
    for name in ("notes.txt", "cut.jpg", "empty.png"):
        assert name in message
    # 8 cats (2 held back) and 5 of each other class (1 held back): the gray, RGBA and palette images all count.
    assert "18 training and 5 validation images" in capsys.readouterr().out


def test_cli_single_image_class_trains(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "photos")
    (photos / "horse").mkdir()
    Image.fromarray(skdata.horse()).save(photos / "horse" / "horse.png")  # a 1-bit silhouette
    assert finetune.cli_finetune([str(photos), *FAST, "--output", str(tmp_path / "m.pt")]) == 0
    assert "17 training and 4 validation images in 5 classes" in capsys.readouterr().out
    assert "horse" in finetune.load_classifier(tmp_path / "m.pt").classes


def test_cli_only_single_images_reports_no_accuracy(tmp_path, capsys):
    for name, load in PHOTOS.items():
        (tmp_path / "few" / name).mkdir(parents=True)
        Image.fromarray(load()).resize((48, 48)).save(tmp_path / "few" / name / "only.jpg")
    assert finetune.cli_finetune([str(tmp_path / "few"), *FAST, "--output", str(tmp_path / "m.pt")]) == 0
    assert "validation accuracy not measured" in capsys.readouterr().out


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
    assert "12 training and 5 validation images in 4 classes" in capsys.readouterr().out


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
