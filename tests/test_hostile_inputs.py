"""Every image entry point either decodes each hostile file correctly or raises UnreadableImageError naming it."""
import os
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hostile_corpus import build_corpus, unreadable_by_permission
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


def test_permission_denied_names_file(tmp_path):
    path = unreadable_by_permission(tmp_path)
    if os.geteuid() == 0:
        pytest.skip("running as root, which can read any file, so a permission error cannot happen here")
    with pytest.raises(UnreadableImageError, match="no_permission.png"):
        load_image_pil(path)


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
