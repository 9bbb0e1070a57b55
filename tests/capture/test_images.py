"""read_image / decode_image on real photos and on every kind of bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceapp.capture.images import IMAGE_EXTENSIONS, decode_image, list_images, read_image
from faceapp.core.errors import ExitCode, InputFileError


@pytest.fixture(scope="module")
def photo(celeba: Path) -> Path:
    return sorted(celeba.glob("*/*.jpg"))[0]


def test_reads_jpeg_as_bgr_uint8_matching_opencv(photo: Path) -> None:
    image = read_image(photo)
    reference = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape == reference.shape
    # same decoder family (libjpeg-turbo): at most rounding differences, and channel order BGR
    assert np.abs(image.astype(int) - reference.astype(int)).mean() < 1.0


def test_pgm_greyscale_becomes_three_equal_channels(att: Path) -> None:
    image = read_image(att / "s1" / "1.pgm")
    assert image.shape == (112, 92, 3)
    assert np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 1], image[:, :, 2])


def test_exif_orientation_is_honoured(photo: Path, tmp_path: Path) -> None:
    upright = Image.open(photo).convert("RGB")
    # store the pixels rotated 90 degrees counter-clockwise with orientation 6 ("rotate 90 CW to display")
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())
    decoded = decode_image(path)
    expected = cv2.cvtColor(np.asarray(upright), cv2.COLOR_RGB2BGR)
    assert decoded.image.shape == expected.shape
    assert decoded.original_size == (upright.width, upright.height)
    assert np.abs(decoded.image.astype(int) - expected.astype(int)).mean() < 6.0


def test_sixteen_bit_grey_and_colour_png(tmp_path: Path) -> None:
    ramp = (np.arange(256 * 64, dtype=np.uint32).reshape(64, 256) * 4).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "grey16.png"), ramp)
    grey = read_image(tmp_path / "grey16.png")
    assert grey.dtype == np.uint8 and grey.shape == (64, 256, 3)
    assert grey[10, 100, 0] == ramp[10, 100] >> 8
    colour = np.dstack([ramp, ramp // 2, ramp // 4])          # BGR for OpenCV
    cv2.imwrite(str(tmp_path / "colour16.png"), colour)
    image = read_image(tmp_path / "colour16.png")
    assert image.shape == (64, 256, 3)
    np.testing.assert_allclose(image[10, 100].astype(int), (colour[10, 100] >> 8).astype(int), atol=1)


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200                  # red in RGBA
    rgba[:4, :, 3] = 255                # top half opaque, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    image = read_image(tmp_path / "alpha.png")
    assert tuple(image[0, 0]) == (0, 0, 200)         # BGR red
    assert tuple(image[7, 7]) == (255, 255, 255)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp", ".tif", ".ppm"])
def test_other_formats_round_trip(photo: Path, tmp_path: Path, ext: str) -> None:
    assert ext in IMAGE_EXTENSIONS
    original = read_image(photo)
    path = tmp_path / f"copy{ext}"
    Image.fromarray(cv2.cvtColor(original, cv2.COLOR_BGR2RGB)).save(path, **({"lossless": True} if ext == ".webp" else {}))
    assert np.array_equal(read_image(path), original)


def _expect_error(path: Path, *words: str) -> InputFileError:
    with pytest.raises(InputFileError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    assert info.value.exit_code == ExitCode.INPUT_FILE
    return info.value


def test_bad_inputs_name_the_file_and_the_problem(photo: Path, tmp_path: Path) -> None:
    _expect_error(tmp_path / "missing.jpg", "no such file")
    (tmp_path / "empty.jpg").write_bytes(b"")
    _expect_error(tmp_path / "empty.jpg", "empty", "0 bytes")
    (tmp_path / "text.jpg").write_text("this is not a picture\n")
    _expect_error(tmp_path / "text.jpg", "not an image")
    data = photo.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "truncated.jpg", "truncated")
    _expect_error(tmp_path, "not a file")


def _write_huge_png(path: Path, width: int, height: int) -> None:
    """A valid 8-bit greyscale PNG of width x height black pixels, streamed (a few hundred KB on disk)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    compressor = zlib.compressobj(1)
    rows = b"\x00" * (width + 1) * 500            # 500 scanlines (filter byte 0 + black pixels) at a time
    parts = [compressor.compress(rows) for _ in range(height // 500)]
    parts.append(compressor.compress(b"\x00" * (width + 1) * (height % 500)))
    parts.append(compressor.flush())
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        out.write(chunk(b"IDAT", b"".join(parts)))
        out.write(chunk(b"IEND", b""))


def test_huge_png_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    _write_huge_png(path, 20000, 20000)
    _expect_error(path, "too large", "20000x20000")


def test_huge_jpeg_is_decoded_reduced(huge_jpeg: Path) -> None:
    decoded = decode_image(huge_jpeg)
    assert decoded.original_size == (20000, 20000)
    assert decoded.scale == pytest.approx(0.25)
    assert decoded.image.shape == (5000, 5000, 3)
    small = decode_image(huge_jpeg, max_pixels=1_000_000)   # 1/8 DCT scale, then an area resize
    assert small.image.shape == (1000, 1000, 3) and small.scale == pytest.approx(0.05)


def test_list_images_recurses_and_filters(att: Path, tmp_path: Path) -> None:
    found = list_images([att / "s1", att / "s2" / "1.pgm"])
    assert len(found) == 11 and found[-1] == att / "s2" / "1.pgm"
    (tmp_path / "notes.txt").write_text("x")
    assert list_images([tmp_path]) == []
    with pytest.raises(InputFileError, match="no such file"):
        list_images([tmp_path / "nothing-here"])


# ---------------------------------------------------------------------------------------- hostile files (issue 15)
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _png_with_chunk(path: Path, kind: bytes, payload: bytes) -> Path:
    """An 8 x 8 grey PNG carrying one extra chunk before its pixels."""
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * 8 for _ in range(8)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                     + _png_chunk(kind, payload) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b""))
    return path


def _jpeg_declaring(path: Path, size: tuple[int, int], *, progressive: bool = True) -> Path:
    """A 64 x 64 JPEG (a few hundred bytes) whose frame header is rewritten to declare ``size``."""
    import io

    buffer = io.BytesIO()
    Image.new("L", (64, 64), 90).save(buffer, "JPEG", progressive=progressive, quality=80)
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc2" if progressive else b"\xff\xc0")
    assert sof > 0
    data[sof + 5:sof + 9] = struct.pack(">HH", size[1], size[0])
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def no_full_decode(monkeypatch: pytest.MonkeyPatch):
    """Fails the test if Pillow starts decoding pixels (ImageFile.load) during it: each attempt is recorded
    (a code path that swallows the exception is still caught) and refused (no gigabytes spent)."""
    from PIL import ImageFile

    attempts: list[str] = []

    def refuse(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        attempts.append(f"{self.format} {self.size}")
        raise AssertionError(f"{self.format} {self.size} was decoded before its declared size was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    yield
    assert not attempts, f"decoded before the size check: {attempts}"


@pytest.mark.parametrize("header", [b"P5\n92 1x\n255\n", b"P5\n9", b"P6\n-3 4\n255\n", b"P5\n3 3\n99999999\n"])
def test_bad_pnm_headers_are_input_errors(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "bad.pgm"
    path.write_bytes(header)
    _expect_error(path, "bad.pgm")


@pytest.mark.parametrize("kind", [b"zTXt", b"iCCP"])
def test_png_chunk_inflating_past_pillows_limit_is_an_input_error(tmp_path: Path, kind: bytes) -> None:
    bomb = zlib.compress(b"\x00" * (8 * 1024 * 1024), 9)             # 8 MB of text from about 8 KB
    payload = (b"Comment\x00\x00" if kind == b"zTXt" else b"icc\x00\x00") + bomb
    path = _png_with_chunk(tmp_path / f"{kind.decode()}.png", kind, payload)
    assert path.stat().st_size < 20_000
    _expect_error(path, "corrupt")


def test_size_is_checked_before_exif_is_read(tmp_path: Path, no_full_decode) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (400, 400), 0).save(path)
    _expect_error_with_limit(path, 10_000, "too large", "400x400")


@pytest.mark.parametrize("side", [30000, 64000])
def test_tiny_progressive_jpeg_declaring_a_huge_image_is_corrupt(tmp_path: Path, side: int, no_full_decode) -> None:
    path = _jpeg_declaring(tmp_path / "bomb.jpg", (side, side))
    assert path.stat().st_size < 2_000
    _expect_error(path, "corrupt", f"{side}x{side}")


def test_tiny_baseline_jpeg_declaring_a_huge_image_is_corrupt(tmp_path: Path, no_full_decode) -> None:
    _expect_error(_jpeg_declaring(tmp_path / "bomb.jpg", (30000, 30000), progressive=False), "corrupt")


def test_progressive_jpeg_over_the_limit_is_refused_not_reduced(tmp_path: Path, photo: Path, no_full_decode) -> None:
    path = tmp_path / "progressive.jpg"
    pixels = cv2.imread(str(photo))
    cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    height, width = pixels.shape[:2]
    _expect_error_with_limit(path, 10_000, "progressive", f"{width}x{height}")


def test_large_non_image_is_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "noise.jpg"
    with open(path, "wb") as out:                       # sparse: 1 GiB declared, a few bytes on disk
        out.write(b"definitely not an image")
        out.truncate(1 << 30)

    def refuse(self):  # noqa: ANN001
        raise AssertionError(f"{self} was read whole")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    _expect_error(path, "not an image")


def _expect_error_with_limit(path: Path, limit: int, *fragments: str) -> None:
    with pytest.raises(InputFileError) as caught:
        decode_image(path, max_pixels=limit)
    text = str(caught.value)
    assert str(path) in text and all(f in text for f in fragments), text
