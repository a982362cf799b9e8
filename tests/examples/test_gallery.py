"""The README's gallery: one small committed picture per example, each the picture its module
names, shown with its command; none of them shipped in the wheel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xbackprop import examples

from .conftest import check_png

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "xbackprop" / "examples" / "gallery"
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", examples.NAMES)
def test_each_example_has_a_small_gallery_picture_in_the_readme(name, pictures):
    module = examples.load(name)
    assert module.GALLERY in [p.name for p in pictures(name)], "not one of its pictures"
    picture = GALLERY / f"{name}.png"
    assert picture.stat().st_size <= 60_000, f"{picture} is larger than 60 kB"
    check_png(picture, (400, 200))
    assert f"`xbackprop example {name}" in README
    assert f'src="xbackprop/examples/gallery/{name}.png"' in README


def test_no_stray_pictures():
    assert sorted(p.stem for p in GALLERY.glob("*.png")) == sorted(examples.NAMES)


def test_gallery_is_not_shipped_in_the_wheel():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = config.get("package-data", {})
    assert not any("examples" in package for package in shipped)
    assert config.get("include-package-data", True) is True  # only listed data, no MANIFEST
    assert not (ROOT / "MANIFEST.in").exists()


def test_shrink_makes_a_big_picture_small(pictures, tmp_path):
    big = next(p for p in pictures("network-view") if p.name == "parallel_coordinates.png")
    assert big.stat().st_size > 100_000
    small = examples.shrink_png(big, tmp_path / "small.png", max_bytes=60_000)
    assert small.stat().st_size <= 60_000
    check_png(small, (400, 150))
    with pytest.raises(ValueError, match="does not shrink below 100 bytes"):
        examples.shrink_png(big, tmp_path / "tiny.png", max_bytes=100)
    assert not (tmp_path / "tiny.png").exists()


def test_readme_lists_every_example_once():
    shown = re.findall(r"\| \*\*([a-z0-9-]+)\*\*: ", README)  # the gallery table's cells
    assert sorted(shown) == sorted(examples.NAMES)
