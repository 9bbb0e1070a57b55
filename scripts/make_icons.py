"""Draw FaceApp's application icon with Pillow and write it in the sizes desktops ask for.

    python scripts/make_icons.py              # -> resources/icons/faceapp-{16,32,48,64,128,256}.png

The icon: a face outline in a camera viewfinder on the dark theme's background, with the five points the
pipeline aligns on (eyes, nose tip, mouth corners) in the accent colour. Each size is drawn at 8x and
reduced with a Lanczos filter; small sizes get thicker strokes so they stay legible. The PNGs are committed
(``resources/`` is what the app ships); rerun this after changing the drawing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

SIZES = (16, 32, 48, 64, 128, 256)
BACKGROUND = (25, 35, 45, 255)       # the dark theme's background, #19232D
FACE = (223, 225, 226, 255)          # its text colour, #DFE1E2
ACCENT = (55, 174, 254, 255)         # its accent, #37AEFE
SUPERSAMPLE = 8
# the five points of the 112 x 112 alignment template (faceapp.vision.align), in a 0..1 square
FIVE_POINTS = [(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041)]


def draw_icon(size: int) -> Image.Image:
    """The icon at ``size`` x ``size`` pixels (RGBA)."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    unit = big / 256.0
    stroke = max(1, round((14 if size <= 32 else 9) * unit))     # thicker lines where pixels are few
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=round(48 * unit), fill=BACKGROUND)

    # viewfinder corners
    margin, arm = 34 * unit, 48 * unit
    for cx, cy, dx, dy in ((margin, margin, 1, 1), (big - margin, margin, -1, 1),
                           (margin, big - margin, 1, -1), (big - margin, big - margin, -1, -1)):
        draw.line([(cx, cy + dy * arm), (cx, cy), (cx + dx * arm, cy)], fill=ACCENT, width=stroke, joint="curve")

    # face outline: an ellipse placed like the template's face in the 112 x 112 crop
    face_box = (70 * unit, 56 * unit, 186 * unit, 212 * unit)
    draw.ellipse(face_box, outline=FACE, width=stroke)

    # the five alignment points, mapped from the template into the face box
    x0, y0, x1, y1 = face_box
    radius = max(1.5 * SUPERSAMPLE, (16 if size <= 32 else 9) * unit)
    for tx, ty in FIVE_POINTS:
        px = x0 + (tx - 16.0) / 80.0 * (x1 - x0)
        py = y0 + (ty - 14.0) / 98.0 * (y1 - y0)
        draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=ACCENT)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "icons",
                        help="folder for faceapp-<size>.png (default: resources/icons)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        path = args.out / f"faceapp-{size}.png"
        draw_icon(size).save(path, optimize=True)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
