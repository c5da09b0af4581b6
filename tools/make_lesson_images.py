"""Build images/ for the lesson: scikit-image sample photos, derived copies, the style image and the credits.

Each photo comes from the sample data that ships inside the scikit-image package, so the script needs no
network. Only images whose scikit-image docstring states CC0 or public domain are exported, and the
docstring's facts (author, original URL, licence) are copied into the CREDITS table below.
The script writes:

- one file per sample image, keeping the scikit-image file stem, as JPEG (quality 90) for photos and
  PNG for line art and tiny images, downscaled with LANCZOS so the longer side is at most 800 px;
- derived copies (crop, rotation, grayscale) that give the image-search demo near-duplicates to find;
- swirling_strokes.jpg, painted by tools/make_style_image.py;
- credits.csv and CREDITS.md, with one row per file.

    python tools/make_lesson_images.py            # fails if any output file exists
    python tools/make_lesson_images.py --force    # overwrites the output files
"""

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import skimage
import skimage.data
from PIL import Image, ImageOps

import make_style_image

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO_ROOT / "images"
MAX_SIDE = 800
JPEG_QUALITY = 90
PROJECT_AUTHOR = "tglcourse contributors"

LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "PDM-1.0": "https://creativecommons.org/publicdomain/mark/1.0/",
}
LICENSE_NAMES = {"CC0-1.0": "CC0 1.0", "PDM-1.0": "Public domain"}

# Version whose skimage.data docstrings the CREDITS table was checked against.
CHECKED_SKIMAGE_VERSION = "0.26.0"

# One entry per sample image: (file name, skimage.data function, title, author, original source, licence).
# Authors, sources and licences are those stated in the function's docstring.
SAMPLE_IMAGES = [
    ("astronaut.jpg", "astronaut", "Astronaut Eileen Collins", "NASA",
     "https://flic.kr/p/r9qvLn", "PDM-1.0"),
    ("brick.jpg", "brick", "Brick wall (perspective-corrected, rotated, cropped and scaled by scikit-image)",
     "CC0Textures; processed by the scikit-image team", "https://cc0textures.com/view.php?tex=Bricks25", "CC0-1.0"),
    ("camera.jpg", "camera", "Man with a video camera on a tripod", "Lav Varshney",
     "scikit-image sample data", "CC0-1.0"),
    ("cell.jpg", "cell", "Cell floating in saline (quantitative phase image)",
     "Paul Müller, Mirjam Schürmann, Salvatore Girardo, Gheorghe Cojoc, Jochen Guck",
     "data of the study at https://doi.org/10.1364/OE.26.010729", "CC0-1.0"),
    ("chelsea.jpg", "chelsea", "Chelsea the cat", "Stefan van der Walt",
     "scikit-image sample data", "CC0-1.0"),
    ("clock_motion.jpg", "clock", "Motion-blurred wall clock", "Stefan van der Walt",
     "scikit-image sample data", "PDM-1.0"),
    ("coffee.jpg", "coffee", "Coffee cup (courtesy of Pikolo Espresso Bar)", "Rachel Michetti",
     "scikit-image sample data", "CC0-1.0"),
    ("grass.jpg", "grass", "Grass (cropped and converted to grayscale by scikit-image)",
     "linolafett; processed by the scikit-image team",
     "https://www.deviantart.com/linolafett/art/Grass-01-434853879", "CC0-1.0"),
    ("gravel.jpg", "gravel", "Gravel (rescaled, cropped and converted to grayscale by scikit-image)",
     "CC0Textures; processed by the scikit-image team", "https://cc0textures.com/view.php?tex=Gravel04", "CC0-1.0"),
    ("horse.png", "horse", "Silhouette of a horse", "Andreas Preuss (marauder)",
     "http://openclipart.org/detail/158377/horse-by-marauder", "CC0-1.0"),
    ("hubble_deep_field.jpg", "hubble_deep_field", "Hubble eXtreme Deep Field", "NASA",
     "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/", "PDM-1.0"),
    ("microaneurysms.png", "microaneurysms", "Retina with microaneurysms (green channel, crop of 07_dr.JPG)",
     "Andreas Maier", "https://www5.cs.fau.de/research/data/fundus-images/", "CC0-1.0"),
    ("retina.jpg", "retina", "Fundus photograph of a normal left eye", "Mikael Häggström",
     "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg", "CC0-1.0"),
    # NOTE: the public-domain status rests on the docstring's citation of SpaceX's 2015 release.
    # The current licence shown on the Flickr page is unverified.
    ("rocket.jpg", "rocket", "Falcon 9 launching DSCOVR", "SpaceX",
     "https://www.flickr.com/photos/spacexphotos/16511594820/", "PDM-1.0"),
    ("text.png", "text", "Text image for corner detection", "Unknown (Wikipedia upload)",
     "https://en.wikipedia.org/wiki/File:Corner.png", "PDM-1.0"),
]

# One entry per derived image: (file name, source file in images/, title, licence of the source).
DERIVED_IMAGES = [
    ("chelsea_crop.jpg", "chelsea.jpg", "Chelsea the cat, face cropped and mirrored", "CC0-1.0"),
    ("coffee_rotated.jpg", "coffee.jpg", "Coffee cup, rotated by 10 degrees and cropped", "CC0-1.0"),
    ("astronaut_gray.jpg", "astronaut.jpg", "Astronaut Eileen Collins, grayscale at half size", "PDM-1.0"),
]

STYLE_IMAGE = ("swirling_strokes.jpg", "Swirling brush strokes (generated painting)", "CC0-1.0")

CREDITS_INTRO = (
    "The images in this folder are in the public domain or dedicated to it under CC0 1.0, as the "
    f"scikit-image {CHECKED_SKIMAGE_VERSION} docstrings state for its sample images and as this project states "
    "for its derived and generated images. Neither needs attribution, but the table names each author and source. "
    "`tools/make_lesson_images.py` writes the images, this file and `credits.csv`, so edit that script rather "
    "than this file."
)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help="folder to write into (default: images/ at the repository root)")
    parser.add_argument("--force", action="store_true", help="overwrite output files that already exist")
    return parser.parse_args(argv)


def fit_longer_side(image, max_side=MAX_SIDE):
    """Downscale with LANCZOS so the longer side is at most max_side pixels. Smaller images are returned unchanged."""
    longer = max(image.size)
    if longer <= max_side:
        return image
    scale = max_side / longer
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def load_sample(function_name):
    """Load a scikit-image sample image as a Pillow image (L for grayscale and binary images, else RGB)."""
    array = getattr(skimage.data, function_name)()
    if array.dtype == bool:
        # skimage.data.horse() is True on the background, so this gives a black silhouette on white.
        array = np.where(array, 255, 0).astype(np.uint8)
    return Image.fromarray(array)


def encode(image, file_name):
    """Encode image as PNG for a .png file name and as JPEG (quality 90) otherwise, and return the bytes."""
    buffer = io.BytesIO()
    if file_name.endswith(".png"):
        image.save(buffer, format="PNG", optimize=True)
    else:
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def crop_chelsea_face(image):
    """Crop the cat's face (eyes, nose and mouth) and mirror it left to right."""
    face = image.crop((110, 50, 370, 290))
    return ImageOps.mirror(face)


def rotate_and_crop(image, degrees):
    """Rotate image and crop the largest centred rectangle of the same aspect ratio that has no fill corners."""
    rotated = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
    covered = np.asarray(Image.new("L", image.size, 255).rotate(degrees, resample=Image.Resampling.NEAREST)) == 255

    # Shrink the crop until every pixel in it came from the source image.
    for scale in np.arange(1.0, 0.3, -0.01):
        width, height = round(image.width * scale), round(image.height * scale)
        left, top = (image.width - width) // 2, (image.height - height) // 2
        if covered[top:top + height, left:left + width].all():
            return rotated.crop((left, top, left + width, top + height))
    raise ValueError(f"failed to find a fill-free crop of a {image.width}x{image.height} image rotated by "
                     f"{degrees} degrees")


def gray_half_size(image):
    """Convert to grayscale and halve both sides with LANCZOS."""
    gray = image.convert("L")
    return gray.resize((gray.width // 2, gray.height // 2), Image.Resampling.LANCZOS)


DERIVE = {
    "chelsea_crop.jpg": crop_chelsea_face,
    "coffee_rotated.jpg": lambda image: rotate_and_crop(image, 10),
    "astronaut_gray.jpg": gray_half_size,
}


def build_images():
    """Return {file name: encoded bytes} for every image in the folder."""
    files = {}
    originals = {}
    for file_name, function_name, *_ in SAMPLE_IMAGES:
        image = fit_longer_side(load_sample(function_name))
        originals[file_name] = image
        files[file_name] = encode(image, file_name)

    # Derived copies start from the downscaled image that is written, so they match it pixel for pixel.
    for file_name, source_name, *_ in DERIVED_IMAGES:
        files[file_name] = encode(DERIVE[file_name](originals[source_name]), file_name)

    style_name = STYLE_IMAGE[0]
    style = make_style_image.paint(640, make_style_image.DEFAULT_SEED)
    files[style_name] = encode(style, style_name)
    return files


def credit_rows():
    """Return one dict per image with the credits.csv columns."""
    rows = []
    for file_name, function_name, title, author, source, license_id in SAMPLE_IMAGES:
        rows.append({
            "file": file_name,
            "title": title,
            "author": author,
            "source": f"{source} (via skimage.data.{function_name}() in scikit-image {skimage.__version__})",
            "license": license_id,
        })
    authors = {row["file"]: row["author"] for row in rows}
    for file_name, source_name, title, license_id in DERIVED_IMAGES:
        rows.append({
            "file": file_name,
            "title": title,
            "author": f"{authors[source_name]}; derived by {PROJECT_AUTHOR}",
            "source": f"derived from {source_name} by tools/make_lesson_images.py",
            "license": license_id,
        })
    style_name, title, license_id = STYLE_IMAGE
    rows.append({
        "file": style_name,
        "title": title,
        "author": PROJECT_AUTHOR,
        "source": f"generated by tools/make_style_image.py (seed {make_style_image.DEFAULT_SEED})",
        "license": license_id,
    })

    for row in rows:
        row["license_url"] = LICENSE_URLS[row["license"]]
    return sorted(rows, key=lambda row: row["file"])


def render_csv(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["file", "title", "author", "source", "license", "license_url"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def render_markdown(rows):
    def cell(text):
        return text.replace("|", "\\|")

    lines = ["# Image credits", "", CREDITS_INTRO, "",
             "| File | Title | Author | Source | Licence |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        licence = f"[{LICENSE_NAMES[row['license']]}]({row['license_url']})"
        lines.append(f"| `{row['file']}` | {cell(row['title'])} | {cell(row['author'])} | {cell(row['source'])} "
                     f"| {licence} |")
    return ("\n".join(lines) + "\n").encode()


def main(argv=None):
    args = parse_args(argv)
    if skimage.__version__ != CHECKED_SKIMAGE_VERSION:
        print(f"warning: scikit-image {skimage.__version__} is installed, but the credits were checked against "
              f"{CHECKED_SKIMAGE_VERSION}; compare the skimage.data docstrings with SAMPLE_IMAGES", file=sys.stderr)
    rows = credit_rows()
    outputs = [row["file"] for row in rows] + ["credits.csv", "CREDITS.md"]
    existing = [name for name in outputs if (args.output_dir / name).exists()]
    if existing and not args.force:
        print(f"error: {len(existing)} output files already exist in {args.output_dir}: {', '.join(existing)}; "
              "pass --force to overwrite them", file=sys.stderr)
        return 1

    files = build_images()
    files["credits.csv"] = render_csv(rows)
    files["CREDITS.md"] = render_markdown(rows)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.output_dir / name).write_bytes(data)

    total = sum(len(data) for data in files.values())
    print(f"wrote {len(files)} files to {args.output_dir} ({total / 1e6:.2f} MB in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
