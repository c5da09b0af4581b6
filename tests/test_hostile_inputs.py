"""Every image entry point either decodes each hostile file correctly or raises UnreadableImageError naming it."""
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hostile_corpus import build_corpus, unreadable_by_permission
from without_file_override import DROP_FILE_PERMISSION_OVERRIDE
from tglcourse.backbones import efficientnet_lite0, set_default_backbone
from tglcourse.generation_utils import ContentLossToTarget, PixelGenerator, VincentStyleLossToTarget
from tglcourse.utils import UnreadableImageError, load_image, load_image_pil, load_images_from_folder, pil_to_tensor


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module", autouse=True)
def backbone():
    backbone = efficientnet_lite0()
    set_default_backbone(backbone)
    return backbone


def case_names():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        return sorted(build_corpus(tmp))


def check_pixels(case, image):
    assert image.mode == "RGB"
    assert image.size == case.size
    for (x, y), expected in case.probes.items():
        got = image.getpixel((x, y))
        assert all(abs(g - e) <= case.tolerance for g, e in zip(got, expected)), (case.path.name, (x, y), got, expected)


def entry_points():
    "Each entry point as (name, function of a path returning a PIL image or raising)."
    def via_tensor(path):
        from tglcourse.utils import tensor_to_pil
        return tensor_to_pil(pil_to_tensor(load_image_pil(path)))

    def via_generator(path):
        from tglcourse.utils import tensor_to_pil
        width, height = load_image_pil(path).size  # the generator keeps the image's own size when asked for it
        return tensor_to_pil(PixelGenerator((height, width), init_image=path)())

    return {"load_image_pil": load_image_pil, "load_image": load_image, "pil_to_tensor": via_tensor,
            "PixelGenerator(init_image)": via_generator}


@pytest.mark.parametrize("entry", sorted(entry_points()))
@pytest.mark.parametrize("name", case_names())
def test_entry_point_on_case(corpus, entry, name):
    case, load = corpus[name], entry_points()[entry]
    if case.decodable:
        check_pixels(case, load(case.path))
    else:
        with pytest.raises(UnreadableImageError) as raised:
            load(case.path)
        assert case.path.name in str(raised.value)
        assert case.reason.lower() in str(raised.value).lower()


@pytest.mark.parametrize("name", case_names())
def test_loss_targets_on_case(corpus, name):
    "Losses built from a file: decodable files give a finite loss of about 0 against themselves."
    case = corpus[name]
    if not case.decodable:
        for make in (ContentLossToTarget, VincentStyleLossToTarget):
            with pytest.raises(UnreadableImageError) as raised:
                make(case.path)
            assert case.path.name in str(raised.value)
        return
    image = pil_to_tensor(load_image_pil(case.path))
    content = ContentLossToTarget(case.path)
    assert float(content(image)) == pytest.approx(0.0, abs=1e-6)
    style = VincentStyleLossToTarget(case.path, size=None)
    assert torch.isfinite(style(torch.rand(1, 3, 40, 40)))


# The check runs in a subprocess that first gives up root's power to read any file.
PERMISSION_CHECK = DROP_FILE_PERMISSION_OVERRIDE + """
import warnings
from pathlib import Path

path = Path(sys.argv[1])
try:
    path.read_bytes()
except PermissionError:
    pass
else:
    sys.exit("cannot drop capabilities: the file is still readable")

from tglcourse.utils import UnreadableImageError, load_image_pil, load_images_from_folder
try:
    load_image_pil(path)
except UnreadableImageError as e:
    print("single:", e)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    images, skipped = load_images_from_folder(path.parent)
print("folder read:", sorted(p.name for p in images))
print("folder skipped:", [(p.name, reason) for p, reason in skipped])

from tglcourse.search import ImageIndex
with ImageIndex(path.parent, index_path=path.parent / "index" / "images.sqlite") as index:
    report = index.update(quiet=True)
print("index embedded:", report.embedded)
print("index skipped:", report.skipped)
"""


def test_permission_denied_names_file(tmp_path):
    "A file the user may not read raises UnreadableImageError naming it; folder reads and ImageIndex skip it with the reason."
    import subprocess
    import sys
    path = unreadable_by_permission(tmp_path)
    Image.new("RGB", (4, 4), (7, 8, 9)).save(tmp_path / "readable.png")
    done = subprocess.run([sys.executable, "-c", PERMISSION_CHECK, str(path)], capture_output=True, text=True, timeout=300)
    if "cannot drop capabilities" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"single: {path}: permission denied (this user cannot read the file)",
        "folder read: ['readable.png']",
        "folder skipped: [('no_permission.png', 'permission denied (this user cannot read the file)')]",
        "index embedded: ['readable.png']",
        "index skipped: [('no_permission.png', 'cannot read the file (Permission denied)')]"]


def test_folder_skips_and_reports(corpus):
    folder = next(iter(corpus.values())).path.parent
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, skipped = load_images_from_folder(folder)
    skipped_names = {p.name for p, _ in skipped}
    assert skipped_names == {c.path.name for c in corpus.values() if not c.decodable}
    assert {p.name for p in images} == {c.path.name for c in corpus.values() if c.decodable}
    assert len(caught) == 1
    for name in skipped_names:
        assert name in str(caught[0].message)


def test_folder_without_images_is_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no pictures here")
    with pytest.raises(ValueError, match="no readable image"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_images_from_folder(tmp_path)


def test_empty_folder_is_error(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path.name)):
        load_images_from_folder(tmp_path)


def _valid_image_bytes():
    import io
    out = []
    for fmt in ("PNG", "JPEG", "GIF"):
        buffer = io.BytesIO()
        Image.new("RGB", (16, 12), (30, 60, 90)).save(buffer, format=fmt)
        out.append(buffer.getvalue())
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=2048),
    st.tuples(st.sampled_from(_valid_image_bytes()), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
      .map(lambda t: bytes(b if i not in dict(t[1]) else dict(t[1])[i] for i, b in enumerate(t[0]))),
    st.tuples(st.sampled_from(_valid_image_bytes()), st.integers(1, 400)).map(lambda t: t[0][: t[1]]),
))
def test_decoder_fuzz_raises_only_project_error(tmp_path, data):
    "Random bytes, corrupted and cut images: only success or UnreadableImageError may come out."
    path = tmp_path / "fuzz.img"
    path.write_bytes(data)
    try:
        image = load_image_pil(path)
    except UnreadableImageError as e:
        assert "fuzz.img" in str(e)
    else:
        assert image.mode == "RGB"


def test_image_index_on_corpus(corpus, tmp_path):
    "ImageIndex embeds every decodable corpus file and skips the rest, naming each with a reason."
    from tglcourse.search import ImageIndex
    folder = next(iter(corpus.values())).path.parent
    index = ImageIndex(folder, index_path=tmp_path / "index.sqlite")
    report = index.update(quiet=True)
    skipped = {path for path, _ in report.skipped}
    assert skipped == {c.path.name for c in corpus.values() if not c.decodable}
    assert set(report.embedded) == {c.path.name for c in corpus.values() if c.decodable}
    for path, reason in report.skipped:
        assert reason.strip(), path
    tiny = corpus["1x1 png"].path
    assert index.search(tiny, k=1)[0][0].name == tiny.name  # a 1x1 image is upsampled, embedded and found


def _class_folders_with_corpus(root):
    "root/corpus/ holds the whole hostile corpus, root/plain/ two ordinary images: a two-class training folder."
    cases = build_corpus(root / "corpus")
    (root / "plain").mkdir()
    for i, colour in enumerate([(0, 0, 0), (255, 255, 255)]):
        Image.new("RGB", (40, 30), colour).save(root / "plain" / f"plain{i}.png")
    return cases


def test_class_folders_read_corpus(tmp_path):
    "The fine-tuning reader decodes every readable corpus file to the right pixels and skips the rest with reasons."
    from tglcourse.finetune import read_class_folders
    cases = _class_folders_with_corpus(tmp_path)
    data, skipped = read_class_folders(tmp_path)
    assert data.classes == ["corpus", "plain"]
    read = {path.name: (image, label) for path, image, label in zip(data.paths, data.images, data.labels)}
    assert set(read) == {c.path.name for c in cases.values() if c.decodable} | {"plain0.png", "plain1.png"}
    for case in cases.values():
        if case.decodable:
            image, label = read[case.path.name]
            assert label == 0
            check_pixels(case, image)
    reasons = {path.name: reason for path, reason in skipped}
    assert set(reasons) == {c.path.name for c in cases.values() if not c.decodable}
    for case in cases.values():
        if not case.decodable:
            assert case.reason.lower() in reasons[case.path.name].lower()


def test_loaders_on_corpus(tmp_path):
    "make_loaders warns once, naming each unreadable file, and yields finite batches that include the tiny images."
    from tglcourse.finetune import make_loaders
    cases = _class_folders_with_corpus(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaders = make_loaders(tmp_path, size=32, batch_size=4, valid_fraction=0.25)
    messages = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(messages) == 1
    for case in cases.values():
        if not case.decodable:
            assert str(case.path) in messages[0]
    n_readable = sum(c.decodable for c in cases.values()) + 2
    assert len(loaders.train.dataset) + len(loaders.valid.dataset) == n_readable
    for dl in (loaders.train, loaders.valid):
        for x, y in dl:
            assert x.shape[1:] == (3, 32, 32)
            assert torch.isfinite(x).all()
            assert x.min() >= 0
            assert x.max() <= 1
    valid_transform = loaders.valid.dataset.transform
    tiny = load_image_pil(cases["1x1 png"].path)  # a 1x1 image is upsampled to a flat 32x32 square of its colour
    expected = torch.tensor([10, 200, 30]).view(3, 1, 1) / 255
    assert torch.allclose(valid_transform(tiny), expected.expand(3, 32, 32), atol=1 / 255)


@pytest.fixture(scope="module")
def classifier(backbone):
    from tglcourse.finetune import make_classifier
    return make_classifier(backbone, ["corpus", "plain"], image_size=32).eval()


@pytest.mark.parametrize("name", case_names())
def test_predict_on_case(corpus, classifier, name):
    "predict gives a class and a probability for every decodable file and the project's error for the rest."
    from tglcourse.finetune import predict
    case = corpus[name]
    if case.decodable:
        [(label, probability)] = predict(classifier, case.path)
        assert label in classifier.classes
        assert 0.5 <= probability <= 1  # the larger of two class probabilities
    else:
        with pytest.raises(UnreadableImageError) as raised:
            predict(classifier, case.path)
        assert case.path.name in str(raised.value)
        assert case.reason.lower() in str(raised.value).lower()
