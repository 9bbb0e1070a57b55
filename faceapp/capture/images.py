"""Reading still images into BGR uint8 arrays, safely.

Every problem a user can cause (missing file, empty file, text named ``.jpg``, truncated JPEG, a picture
too large to decode) becomes an ``InputFileError`` naming the file and the problem, never a traceback.

Decoding uses Pillow, because it reads the header before any pixel (so a 20000 x 20000 image is caught
before it costs 1.2 GB), reports truncated files instead of silently padding them with grey, honours the
EXIF orientation, and decodes JPEGs at 1/2, 1/4 or 1/8 scale directly from the DCT (``Image.draft``).
OpenCV is the fallback for formats Pillow does not know.

Hostile files: every check on the declared size runs on the header, before anything that decodes (reading
EXIF from a PNG loads its pixels, so orientation is read only after the checks). A progressive JPEG is
refused over the pixel limit, since libjpeg keeps the coefficients of the whole image whatever the DCT
scale (about 3 bytes per declared pixel); a JPEG or PNG far smaller than the least data its declared size
needs (one bit per 8 x 8 block for Huffman JPEG, deflate's 1:1032 for PNG) is reported as corrupt before
it is decoded. A decoder's own failure on a crafted header or chunk (a bad PGM size, a zTXt or iCCP chunk
inflating past Pillow's limit) is an InputFileError too. The OpenCV fallback reads only files whose
signature OpenCV knows and that are at most ``MAX_FALLBACK_BYTES`` long.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceapp.core.errors import InputFileError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp", ".tif", ".tiff"}
)

#: Images with more pixels than this are decoded reduced (JPEG) or refused (other formats).
DEFAULT_MAX_PIXELS = 64_000_000

#: Files Pillow does not recognise are handed to OpenCV only up to this size (a 1 GiB ``.jpg`` of noise is not read).
MAX_FALLBACK_BYTES = 256 * 1024 * 1024

#: Start-of-frame markers of arithmetic-coded JPEGs (their data can be smaller than one bit per block).
_ARITHMETIC_SOF = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})

_PIL_BOMB_LOCK = threading.Lock()


@dataclass
class DecodedImage:
    """A decoded image and how it relates to the file: ``scale`` = decoded size / file size (<= 1)."""

    image: np.ndarray                 # H x W x 3 uint8 BGR, EXIF orientation applied
    original_size: tuple[int, int]    # (width, height) of the file's pixels after EXIF rotation
    scale: float = 1.0


def is_image_path(path: str | Path) -> bool:
    """True when the file name has one of ``IMAGE_EXTENSIONS`` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(paths: Iterable[str | Path], *, recursive: bool = True) -> list[Path]:
    """Image files named by ``paths``: files as given, folders searched (recursively) and sorted.

    Raises InputFileError for a path that does not exist. Files given explicitly are kept whatever
    their extension (so a bad file is reported, not silently skipped); folder contents are filtered.
    A file named twice (directly or through a folder) is listed once, at its first place.
    """
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(sorted(p for p in path.glob(pattern) if p.is_file() and is_image_path(p)))
        elif path.exists():
            found.append(path)
        else:
            raise InputFileError(f"{path}: no such file or folder", path=str(path))
    seen: set[Path] = set()
    unique = []
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _open_header(path: Path) -> Image.Image:
    """Open the file with Pillow (header only); our own pixel limit replaces Pillow's bomb check.

    UnidentifiedImageError passes through (the OpenCV fallback may know the format); any other failure of a
    decoder on a crafted header (ValueError from a PGM size ``1x``, a zTXt chunk over Pillow's limit, ...)
    becomes an InputFileError naming the file.
    """
    with _PIL_BOMB_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        except UnidentifiedImageError:
            raise
        except OSError as error:
            raise InputFileError(f"{path}: cannot read ({error.strerror or error})", path=str(path)) from error
        except Exception as error:  # noqa: BLE001 - any decoder failure on hostile bytes is a bad input file
            raise InputFileError(f"{path}: corrupt image header ({_describe(error)})", path=str(path)) from error
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _describe(error: BaseException) -> str:
    """A one-line description of a decoder exception (its text, else its type), at most 200 characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


def _jpeg_frame_marker(path: Path) -> int | None:
    """The SOFn marker byte of a JPEG (0xC0..0xCF), found by walking its segments; None when not found."""
    try:
        with open(path, "rb") as stream:
            if stream.read(2) != b"\xff\xd8":
                return None
            for _ in range(10_000):
                head = stream.read(2)
                while head[:1] == b"\xff" and head[1:2] == b"\xff":      # fill bytes
                    head = head[1:] + stream.read(1)
                if len(head) < 2 or head[0] != 0xFF:
                    return None
                marker = head[1]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    return marker
                if marker in (0x01, *range(0xD0, 0xD8)):                      # markers without a length
                    continue
                size = stream.read(2)
                if len(size) < 2:
                    return None
                stream.seek(int.from_bytes(size, "big") - 2, 1)
    except OSError:
        return None
    return None


def _least_plausible_bytes(img: Image.Image, path: Path) -> int:
    """The fewest bytes a complete file of this format and declared size can have (0 when unknown)."""
    width, height = img.size
    if img.format == "JPEG":
        if _jpeg_frame_marker(path) in _ARITHMETIC_SOF:
            return 0
        blocks = -(-width // 8) * -(-height // 8)
        return blocks // 8                              # at least one Huffman bit per luma block
    if img.format == "PNG":
        raw = height * (1 + -(-width // 8))             # one bit per pixel, one filter byte per row
        return raw // 1032                              # deflate's best ratio
    return 0


def _check_declared_size(img: Image.Image, path: Path, file_size: int, limit: int) -> None:
    """Refuse, from the header alone, images whose decode would be implausible or cost too much memory."""
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InputFileError(f"{path}: image has no pixels ({width}x{height})", path=str(path))
    pixels = width * height
    least = _least_plausible_bytes(img, path)
    if file_size < least:
        raise InputFileError(
            f"{path}: corrupt or truncated image file: it declares {width}x{height} pixels, which needs at least "
            f"{least} bytes of {img.format} data, but the file has {file_size} bytes", path=str(path))
    if pixels <= limit:
        return
    if img.format != "JPEG":
        raise InputFileError(
            f"{path}: image too large ({width}x{height} = {pixels / 1e6:.0f} megapixels, limit "
            f"{limit / 1e6:.0f}); only JPEG can be decoded reduced - downscale it first", path=str(path))
    if img.info.get("progressive"):
        raise InputFileError(
            f"{path}: image too large ({width}x{height} = {pixels / 1e6:.0f} megapixels, limit "
            f"{limit / 1e6:.0f}): a progressive JPEG cannot be decoded reduced without holding the whole image "
            "in memory - downscale it first", path=str(path))


def _exif_swaps_axes(img: Image.Image) -> bool:
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not stop decoding
        return False
    return orientation in (5, 6, 7, 8)


def _to_bgr(img: Image.Image, path: Path) -> np.ndarray:
    """Any Pillow mode -> H x W x 3 uint8 BGR (16-bit scaled, alpha composited on white)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        if mode == "I" and arr.max(initial=0) <= 255:
            grey = arr.astype(np.uint8)
        else:
            grey = (arr.astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        grey = np.zeros(arr.shape, np.uint8) if hi <= lo else ((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if mode == "1":
        img = img.convert("L")
        mode = "L"
    if mode == "L":
        return cv2.cvtColor(np.asarray(img), cv2.COLOR_GRAY2BGR)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputFileError(f"{path}: unsupported pixel format {mode}", path=str(path))
    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)


def _read_for_opencv(path: Path, file_size: int) -> bytes | None:
    """The bytes of a file Pillow did not recognise, when OpenCV knows its signature and it is not too long.

    None when OpenCV has no reader for it (checked on the signature, without reading the file) or it is over
    ``MAX_FALLBACK_BYTES`` (a 1 GiB non-image named ``.jpg`` is never read whole).
    """
    try:
        known = bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        known = False
    if not known or file_size > MAX_FALLBACK_BYTES:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputFileError(f"{path}: cannot read ({error.strerror or error})", path=str(path)) from error


def _decode_with_opencv(path: Path, data: bytes) -> np.ndarray | None:
    """Fallback decoder for formats Pillow does not read; None when OpenCV cannot either."""
    buf = np.frombuffer(data, np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None or arr.size == 0:
        return None
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = cv2.normalize(arr, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32)
        return (rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return arr[:, :, :3].copy()


def decode_image(path: str | Path, max_pixels: int | None = None) -> DecodedImage:
    """Decode ``path`` to BGR uint8, reduced (JPEG) when it has more than ``max_pixels`` pixels.

    ``max_pixels`` None means ``DEFAULT_MAX_PIXELS``. Non-JPEG images over the limit are refused with an
    InputFileError, since their decoders cannot skip pixels and the full decode would take gigabytes.
    """
    path = Path(path)
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if not path.exists():
        raise InputFileError(f"{path}: no such file", path=str(path))
    if not path.is_file():
        raise InputFileError(f"{path}: not a file", path=str(path))
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputFileError(f"{path}: cannot read ({error.strerror or error})", path=str(path)) from error
    if size == 0:
        raise InputFileError(f"{path}: empty file (0 bytes), not an image", path=str(path))

    try:
        img = _open_header(path)
    except UnidentifiedImageError:
        data = _read_for_opencv(path, size)
        try:
            decoded = None if data is None else _decode_with_opencv(path, data)
        except cv2.error as error:
            raise InputFileError(f"{path}: corrupt image file ({_describe(error)})", path=str(path)) from error
        if decoded is None:
            raise InputFileError(f"{path}: not an image (unrecognised or unsupported format)", path=str(path))
        h, w = decoded.shape[:2]
        if h * w > limit:
            raise InputFileError(f"{path}: image too large ({w}x{h}, limit {limit / 1e6:.0f} megapixels)",
                                 path=str(path))
        return DecodedImage(decoded, (w, h), 1.0)

    with img:
        width, height = img.size
        _check_declared_size(img, path, size, limit)      # header only: nothing decoded yet
        pixels = width * height
        scale = 1.0
        try:
            original = (height, width) if _exif_swaps_axes(img) else (width, height)
            if pixels > limit:                              # a baseline JPEG: decode at a DCT scale
                factor = 1
                while factor < 8 and pixels / (factor * factor) > limit:
                    factor *= 2
                img.draft("RGB", (max(1, width // factor), max(1, height // factor)))
                if img.size[0] * img.size[1] > max(limit, DEFAULT_MAX_PIXELS):
                    raise InputFileError(
                        f"{path}: image too large ({width}x{height} = {pixels / 1e6:.0f} megapixels); even a 1/8 "
                        f"decode exceeds {max(limit, DEFAULT_MAX_PIXELS) / 1e6:.0f} megapixels",
                        path=str(path),
                    )
                scale = img.size[0] / width
            img.load()
            oriented = ImageOps.exif_transpose(img)
            bgr = _to_bgr(oriented if oriented is not None else img, path)
        except InputFileError:
            raise
        except MemoryError as error:
            raise InputFileError(f"{path}: not enough memory to decode ({width}x{height})", path=str(path)) from error
        except Exception as error:  # noqa: BLE001 - any decoder failure on hostile bytes is a bad input file
            message = _describe(error)
            problem = "truncated" if "truncat" in message.lower() else "corrupt"
            raise InputFileError(f"{path}: {problem} image file ({message})", path=str(path)) from error
    if bgr.shape[0] * bgr.shape[1] > limit:
        # the smallest DCT scale was still over the limit: finish with an area resize
        shrink = (limit / float(bgr.shape[0] * bgr.shape[1])) ** 0.5
        size = (max(1, int(bgr.shape[1] * shrink)), max(1, int(bgr.shape[0] * shrink)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        scale = size[0] / float(original[0])
    return DecodedImage(bgr, original, scale)


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """BGR uint8 H x W x 3 pixels of an image file (see ``decode_image``); InputFileError on bad input."""
    return decode_image(path, max_pixels).image

