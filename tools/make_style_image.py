"""Paint the lesson's style image: thick, curved brush strokes that follow a swirling flow field.

The result imitates a post-impressionist night sky (blues, yellows, whites and a few dark
strokes) and is dedicated to the public domain (CC0 1.0) as a work of the project.
It uses only numpy and Pillow. With the same numpy and Pillow versions, the same seed and size
give the same pixels.

    python tools/make_style_image.py            # writes images/swirling_strokes.jpg
    python tools/make_style_image.py --force    # overwrites an existing output file
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "images" / "swirling_strokes.jpg"
JPEG_QUALITY = 90
DEFAULT_SEED = 1889

# Palette as RGB in 0..255.
NIGHT_BLUE = (22, 38, 104)
SKY_BLUE = (72, 118, 196)
PALE_BLUE = (150, 190, 226)
CREAM = (240, 236, 200)
STAR_YELLOW = (250, 214, 60)
PALE_YELLOW = (236, 232, 150)
LAMP_YELLOW = (255, 200, 70)
DARK_GREEN = (24, 40, 30)
HILL_BLUE = (24, 36, 80)

# Glowing orbs as (x, y, radius), in units of the image side.
ORBS = [(0.82, 0.16, 0.085), (0.18, 0.14, 0.05), (0.52, 0.09, 0.04), (0.38, 0.34, 0.045), (0.68, 0.42, 0.04)]
# Large vortices that bend the flow as (x, y, strength, core radius), in units of the image side.
VORTICES = [(0.45, 0.28, 1.0, 0.10), (0.70, 0.30, -0.8, 0.08), (0.25, 0.45, 0.6, 0.12)]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="output file; .png or .jpg (default: images/swirling_strokes.jpg)")
    parser.add_argument("--size", type=int, default=640, help="side of the square image in pixels (default: 640)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the random generator (default: {DEFAULT_SEED})")
    parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    args = parser.parse_args(argv)
    if args.size < 64:
        parser.error(f"--size must be at least 64 pixels, got {args.size}")
    if args.output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        parser.error(f"--output must end in .png, .jpg or .jpeg, got {args.output}")
    return args


def flame_mask(xs, ys):
    """Return a mask of the dark, flame-shaped tree at the lower left."""
    base_x, top_y = 0.16, 0.30
    height = np.clip((ys - top_y) / (1.0 - top_y), 0.0, 1.0)
    half_width = 0.012 + 0.09 * height**0.8
    sway = 0.025 * np.sin(ys * 18.0)
    return (ys > top_y) & (np.abs(xs - base_x - sway) < half_width)


def hill_height(xs):
    """Return the y coordinate of the dark hills' ridge for each x."""
    return 0.80 - 0.05 * np.sin(xs * 5.0 + 0.6) - 0.025 * np.sin(xs * 13.0)


def flow_angle(xs, ys):
    """Return the stroke direction in radians at normalised coordinates xs, ys."""
    # A wavy rightward drift gives the horizontal bands of the sky.
    vx = np.ones_like(xs)
    vy = 0.45 * np.sin(xs * 9.0 + ys * 4.0) + 0.25 * np.sin(ys * 15.0)

    # Each vortex and orb adds a tangential flow that fades beyond about 2.5 core radii.
    for cx, cy, strength, core in VORTICES + [(x, y, 1.2, r) for x, y, r in ORBS]:
        dx, dy = xs - cx, ys - cy
        dist2 = dx**2 + dy**2 + 1e-4
        speed = 3.0 * strength * core * np.exp(-dist2 / (2.5 * core) ** 2) / dist2
        vx += -dy * speed
        vy += dx * speed

    angle = np.arctan2(vy, vx)

    # The tree's strokes rise almost vertically, and the hills' strokes follow the ridge.
    tree = flame_mask(xs, ys)
    angle = np.where(tree, -np.pi / 2 + 0.35 * np.sin(ys * 25.0 + xs * 40.0), angle)
    hills = ys > hill_height(xs)
    angle = np.where(hills & ~tree, 0.25 * np.sin(xs * 6.0), angle)
    return angle


def base_colour(xs, ys):
    """Return the RGB colour in 0..255 that a stroke starting at xs, ys takes before jitter."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    colour = np.empty(xs.shape + (3,))

    # Sky: darker at the top, with pale bands that follow the main swirl.
    t = np.clip(ys / 0.8, 0.0, 1.0)[..., None]
    colour[:] = (1 - t) * np.array(NIGHT_BLUE) + t * np.array(SKY_BLUE)
    band = 0.5 + 0.5 * np.sin(ys * 22.0 + 3.0 * np.sin(xs * 7.0))
    band = (band**6)[..., None]
    colour = (1 - 0.7 * band) * colour + 0.7 * band * np.array(PALE_BLUE)

    # Orbs: yellow cores with a cream ring and a pale yellow halo.
    for cx, cy, radius in ORBS:
        dist = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)[..., None]
        core = dist < radius
        ring = (dist >= radius) & (dist < 1.6 * radius)
        halo = (dist >= 1.6 * radius) & (dist < 2.3 * radius)
        colour = np.where(core, STAR_YELLOW, colour)
        colour = np.where(ring, CREAM, colour)
        colour = np.where(halo, 0.45 * colour + 0.55 * np.array(PALE_YELLOW), colour)

    hills = (ys > hill_height(xs))[..., None]
    colour = np.where(hills, HILL_BLUE, colour)
    tree = flame_mask(xs, ys)[..., None]
    colour = np.where(tree, DARK_GREEN, colour)
    return colour


def trace_strokes(starts, steps, step_length, size):
    """Follow the flow field from each start point and return polylines of shape (n, steps + 1, 2) in pixels."""
    points = np.empty((len(starts), steps + 1, 2))
    points[:, 0] = starts
    for i in range(steps):
        angle = flow_angle(points[:, i, 0] / size, points[:, i, 1] / size)
        points[:, i + 1, 0] = points[:, i, 0] + step_length * np.cos(angle)
        points[:, i + 1, 1] = points[:, i, 1] + step_length * np.sin(angle)
    return points


def draw_stroke(draw, polyline, width, colour, rng):
    """Draw one stroke as parallel bristle lines of jittered shade, so the stroke shows texture."""
    direction = polyline[-1] - polyline[0]
    norm = np.hypot(*direction)
    if norm < 1e-6:
        return
    normal = np.array([-direction[1], direction[0]]) / norm

    bristles = max(3, int(width / 2.5))
    offsets = np.linspace(-width / 2, width / 2, bristles)
    last = len(polyline)
    for offset in offsets:
        # Mostly a change of lightness, so bristles read as one paint colour catching the light.
        shade = rng.normal(0.0, 16.0) - (offset / width) * 24.0
        bristle_colour = tuple(int(c) for c in np.clip(np.asarray(colour) + shade, 0, 255))
        # Bristles start and end at random points, so the stroke has ragged ends.
        edge = abs(offset) / (width / 2)
        start = int(rng.integers(0, 2 + int(2 * edge)))
        end = last - int(rng.integers(0, 2 + int(3 * edge)))
        line = polyline[start:max(start + 2, end)] + offset * normal
        draw.line([tuple(p) for p in line], fill=bristle_colour, width=max(2, round(width / bristles * 1.5)),
                  joint="curve")


def draw_layer(draw, size, starts, colours, width, steps, step_length, rng):
    """Trace a stroke from each start point along the flow field and draw it."""
    polylines = trace_strokes(starts, steps, step_length * rng.uniform(0.8, 1.2), size)
    for polyline, colour in zip(polylines, colours):
        draw_stroke(draw, polyline, width * rng.uniform(0.8, 1.2), colour, rng)


def paint(size, seed):
    """Paint the image and return it as an RGB Pillow image."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (size, size), NIGHT_BLUE)
    draw = ImageDraw.Draw(canvas)
    scale = size / 640

    # Coarse layers first, so later and thinner strokes sit on top.
    layers = [  # (stroke count at 640x640, width in px, steps of about 3.5 px, lightness jitter)
        (1800, 18, 10, 14.0),
        (3200, 13, 9, 18.0),
        (4200, 9, 8, 22.0),
    ]
    for count, width, steps, jitter in layers:
        count = int(count * scale**2)
        starts = rng.uniform(-0.03 * size, 1.03 * size, size=(count, 2))
        colours = base_colour(starts[:, 0] / size, starts[:, 1] / size)
        colours += rng.normal(0.0, jitter, size=(count, 1)) + rng.normal(0.0, 6.0, size=(count, 3))
        draw_layer(draw, size, starts, colours, width * scale, steps, 3.5 * scale, rng)

    # Accents on top: long, thin dark strokes and pale highlights.
    for count, colour, width, steps in [(260, (12, 20, 52), 5, 14), (420, CREAM, 6, 9), (200, PALE_BLUE, 7, 10)]:
        count = int(count * scale**2)
        starts = rng.uniform(0, size, size=(count, 2))
        in_sky = starts[:, 1] / size < hill_height(starts[:, 0] / size) - 0.02
        starts = starts[in_sky & ~flame_mask(starts[:, 0] / size, starts[:, 1] / size)]
        colours = np.array(colour, float) + rng.normal(0.0, 10.0, size=(len(starts), 1))
        draw_layer(draw, size, starts, colours, width * scale, steps, 3.5 * scale, rng)

    # Yellow strokes swirl around each orb's core, and lit windows dot the hills.
    for cx, cy, radius in ORBS:
        count = int(40 * (radius / 0.05) ** 2 * scale**2)
        angle = rng.uniform(0, 2 * np.pi, count)
        distance = radius * size * np.sqrt(rng.uniform(0.0, 1.4, count))
        starts = np.stack([cx * size + distance * np.cos(angle), cy * size + distance * np.sin(angle)], axis=1)
        palette = np.array([STAR_YELLOW, LAMP_YELLOW, PALE_YELLOW], float)
        colours = palette[rng.choice(3, size=count, p=[0.6, 0.2, 0.2])] + rng.normal(0.0, 14.0, size=(count, 1))
        draw_layer(draw, size, starts, colours, 8 * scale, 6, 3.0 * scale, rng)

    count = int(40 * scale**2)
    xs = rng.uniform(0.3, 1.0, count)
    ys = hill_height(xs) + rng.uniform(0.03, 0.15, count)
    starts = np.stack([xs, ys], axis=1) * size
    colours = np.array(LAMP_YELLOW, float) + rng.normal(0.0, 12.0, size=(count, 1))
    draw_layer(draw, size, starts, colours, 7 * scale, 3, 3.0 * scale, rng)

    return add_impasto(canvas)


def add_impasto(canvas):
    """Light the paint's relief from the upper left, so strokes look thick."""
    relief = canvas.convert("L").filter(ImageFilter.GaussianBlur(1.0))
    height = np.asarray(relief, dtype=float) / 255.0
    gy, gx = np.gradient(height)
    light = 1.0 + 2.2 * (-gx - gy)
    pixels = np.asarray(canvas, dtype=float) * np.clip(light, 0.7, 1.3)[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def main(argv=None):
    args = parse_args(argv)
    if args.output.exists() and not args.force:
        print(f"error: {args.output} already exists; pass --force to overwrite it", file=sys.stderr)
        return 1

    image = paint(args.size, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix.lower() == ".png":
        image.save(args.output, optimize=True)
    else:
        image.save(args.output, quality=JPEG_QUALITY, optimize=True)
    print(f"wrote {args.output} ({args.size}x{args.size}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
