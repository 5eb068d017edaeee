"""Reading and writing image files: every PIL mode ends up as `[3,H,W]` uint8 RGB the way a
viewer shows it, and every bad input is one MmtokError naming the file."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from conftest import files_under, png_bytes, sample_image
from conftest import write_image as save_with_pil
from PIL import Image

from mmtok import MmtokError
from mmtok.files import expand_inputs
from mmtok.media.image import IMAGE_SUFFIXES, from_model, read_image, to_model, write_image


def rgb(image: torch.Tensor, y: int, x: int) -> list[int]:
    return image[:, y, x].tolist()


def assert_error(path, *needles, **kwargs) -> str:
    with pytest.raises(MmtokError) as info:
        read_image(path, **kwargs)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for needle in needles:
        assert needle in message
    return message


# -- modes -------------------------------------------------------------------------------
def test_rgb_png_exact(tmp_path):
    image = sample_image(23, 31, seed=1)
    out = read_image(save_with_pil(tmp_path / "x.png", image))
    assert out.dtype == torch.uint8 and out.shape == (3, 23, 31)
    assert torch.equal(out, image)


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp", ".tif", ".gif"])
def test_other_formats(tmp_path, suffix):
    image = sample_image(20, 24, seed=2)
    out = read_image(save_with_pil(tmp_path / f"x{suffix}", image))
    assert out.shape == (3, 20, 24) and out.dtype == torch.uint8
    if suffix in (".bmp", ".tif"):  # lossless
        assert torch.equal(out, image)
    else:  # lossy codecs / GIF's 256-colour palette: close, not exact
        assert (out.int() - image.int()).abs().float().mean() < 15


def test_uppercase_suffix(tmp_path):
    path = save_with_pil(tmp_path / "X.JPG", sample_image(8, 8), format="JPEG")
    assert read_image(path).shape == (3, 8, 8)
    assert expand_inputs([tmp_path], IMAGE_SUFFIXES, "image") == [path]


def test_grayscale(tmp_path):
    gray = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 12, 20)
    for c in range(3):
        assert torch.equal(out[c], torch.from_numpy(gray))


def test_one_bit(tmp_path):
    Image.fromarray(np.eye(6, dtype=bool)).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    assert rgb(out, 0, 0) == [255, 255, 255] and rgb(out, 0, 1) == [0, 0, 0]


def test_palette(tmp_path):
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    for x in range(3):
        im.putpixel((x, 0), x)
    im.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert [rgb(out, 0, x) for x in range(3)] == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_palette_transparency_over_white(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([10, 20, 30, 0, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "p.png", transparency=1)
    out = read_image(tmp_path / "p.png")
    assert rgb(out, 0, 0) == [10, 20, 30] and rgb(out, 0, 1) == [255, 255, 255]


def test_rgba_over_white(tmp_path):
    pixels = np.array([[[200, 40, 0, 255], [200, 40, 0, 0], [200, 40, 0, 128]]], dtype=np.uint8)
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert rgb(out, 0, 0) == [200, 40, 0]
    assert rgb(out, 0, 1) == [255, 255, 255]
    a = 128 / 255
    expected = [round(c * a + 255 * (1 - a)) for c in (200, 40, 0)]
    assert all(abs(got - want) <= 1 for got, want in zip(rgb(out, 0, 2), expected))


def test_la_over_white(tmp_path):
    pixels = np.array([[[0, 255], [0, 0]]], dtype=np.uint8)
    Image.fromarray(pixels, mode="LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert rgb(out, 0, 0) == [0, 0, 0] and rgb(out, 0, 1) == [255, 255, 255]


def test_simple_transparency_over_white(tmp_path):
    """PNG tRNS on a grayscale / RGB image (no alpha channel) is transparency too: a viewer
    shows the transparent colour as background, like the palette and RGBA cases."""
    Image.fromarray(np.array([[0, 200]], dtype=np.uint8), mode="L").save(tmp_path / "l.png", transparency=0)
    out = read_image(tmp_path / "l.png")
    assert rgb(out, 0, 1) == [200, 200, 200]
    assert rgb(out, 0, 0) == [255, 255, 255]


def test_gray16_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535, 1000, 40000]], dtype=np.uint16)
    (tmp_path / "g16.png").write_bytes(png_bytes(values, 16, 0))
    out = read_image(tmp_path / "g16.png")
    expected = np.round(values[0] / 65535 * 255).astype(int).tolist()
    assert out[0, 0].tolist() == expected == [0, 1, 128, 255, 4, 156]
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_gray16_dark_image_stays_dark(tmp_path):
    """A dark 16-bit image (every value below 256) must not be read as 8-bit (bright)."""
    (tmp_path / "dark.png").write_bytes(png_bytes(np.full((4, 4), 200, dtype=np.uint16), 16, 0))
    assert int(read_image(tmp_path / "dark.png").max()) <= 1


def test_rgb16(tmp_path):
    values = np.zeros((2, 3, 3), dtype=np.uint16)
    values[0, 0] = [65535, 0, 32896]
    values[1, 2] = [257 * 10, 257 * 20, 257 * 30]
    (tmp_path / "rgb16.png").write_bytes(png_bytes(values.reshape(2, 9), 16, 2, size=(3, 2)))
    out = read_image(tmp_path / "rgb16.png")
    assert out.shape == (3, 2, 3)
    assert rgb(out, 0, 0) == [255, 0, 128] and rgb(out, 1, 2) == [10, 20, 30]


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # red in CMYK
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (3, 6, 8)
    r, g, b = rgb(out, 3, 4)
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize(
    ("orientation", "top", "shape"),
    [(1, "red-left", (20, 40)), (3, "blue-left", (20, 40)), (6, "red-top", (40, 20)), (8, "blue-top", (40, 20))],
)
def test_exif_orientation(tmp_path, orientation, top, shape):
    """The stored image is red on the left half, blue on the right; EXIF says how to turn it."""
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "o.jpg")
    assert tuple(out.shape[1:]) == shape
    first = rgb(out, 2, 2)
    last = rgb(out, shape[0] - 3, shape[1] - 3)
    is_red = lambda p: p[0] > 200 and p[2] < 60  # noqa: E731
    is_blue = lambda p: p[2] > 200 and p[0] < 60  # noqa: E731
    assert (is_red(first) and is_blue(last)) if top.startswith("red") else (is_blue(first) and is_red(last))


# -- bad inputs ----------------------------------------------------------------------------
def test_decompression_bomb_header(tmp_path):
    """A tiny PNG that claims 50k x 50k pixels is refused from its header, without decoding."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(np.zeros((1, 3), dtype=np.uint8), 8, 2, size=(50_000, 50_000)))
    assert path.stat().st_size < 200
    start = time.perf_counter()
    assert_error(path, "50000x50000", "max_pixels")
    assert time.perf_counter() - start < 2


def test_max_pixels_argument(tmp_path):
    path = save_with_pil(tmp_path / "x.png", sample_image(30, 40))
    assert_error(path, "30", max_pixels=1000)
    assert read_image(path, max_pixels=1200).shape == (3, 30, 40)


def test_float_image_refused(tmp_path):
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "f.tif")
    assert_error(tmp_path / "f.tif", "float")


@pytest.mark.parametrize("content", [b"", b"hello, not an image", bytes(range(256)) * 4])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    assert_error(path)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated(tmp_path, suffix):
    path = save_with_pil(tmp_path / f"x{suffix}", sample_image(64, 64, seed=3))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_error(path, "truncated")


def test_corrupt_png_data(tmp_path):
    """Header intact, compressed pixel data damaged."""
    path = save_with_pil(tmp_path / "x.png", sample_image(32, 32, seed=4))
    data = bytearray(path.read_bytes())
    for i in range(60, len(data) - 20, 7):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    assert_error(path)


def test_missing_file(tmp_path):
    assert_error(tmp_path / "nope.png", "no such file")


# -- writing and conversion ----------------------------------------------------------------
def test_write_png_roundtrip_atomic(tmp_path):
    image = sample_image(17, 19, seed=5)
    write_image(image, tmp_path / "sub" / "y.png")
    assert torch.equal(read_image(tmp_path / "sub" / "y.png"), image)
    assert files_under(tmp_path) == [tmp_path / "sub" / "y.png"]


def test_write_jpeg(tmp_path):
    ramp = torch.linspace(0, 255, 48).round().to(torch.uint8)
    image = torch.stack([ramp[None, :].expand(32, 48), ramp[:32, None].expand(32, 48), 255 - ramp[None, :].expand(32, 48)])
    write_image(image, tmp_path / "y.jpg")
    assert (read_image(tmp_path / "y.jpg").int() - image.int()).abs().float().mean() < 3


def test_write_unknown_suffix(tmp_path):
    with pytest.raises(MmtokError, match="suffix"):
        write_image(sample_image(4, 4), tmp_path / "y.xyz")
    assert files_under(tmp_path) == []


def test_to_from_model():
    values = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    x = to_model(values)
    assert x.dtype == torch.float32
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert torch.equal(from_model(x), values)
    assert from_model(torch.tensor([-3.0, 3.0, 0.0])).tolist() == [0, 255, 128]


# -- input expansion -----------------------------------------------------------------------
def test_expand_inputs_recursive_sorted(tmp_path):
    for name in ["b.png", "a.jpg", "sub/c.webp", "notes.txt"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = expand_inputs([tmp_path], IMAGE_SUFFIXES, "image")
    assert found == [tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "sub" / "c.webp"]


def test_expand_inputs_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MmtokError, match="empty"):
        expand_inputs([tmp_path / "empty"], IMAGE_SUFFIXES, "image")


def test_expand_inputs_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(MmtokError, match="no image files"):
        expand_inputs([tmp_path], IMAGE_SUFFIXES, "image")


def test_expand_inputs_missing(tmp_path):
    with pytest.raises(MmtokError, match="missing.png"):
        expand_inputs([tmp_path / "missing.png"], IMAGE_SUFFIXES, "image")
