"""One list of blocks, two renderings: Markdown with linked images, HTML with inline ones."""

from __future__ import annotations

import base64
from pathlib import Path

from tune.report.document import Heading, Image, Para, Table, to_html, to_markdown

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def blocks(tmp_path: Path) -> list[Heading | Para | Table | Image]:
    (tmp_path / "plots").mkdir()
    image = tmp_path / "plots" / "curves.png"
    image.write_bytes(PNG)
    return [
        Heading("Report <1>", 1),
        Para("**bold** and `code` & more"),
        Table(["a", "b|c"], [["1", "x|y"]]),
        Image(image, "Curves"),
    ]


def test_markdown_links_images_relative_to_the_report(tmp_path: Path) -> None:
    text = to_markdown(blocks(tmp_path), tmp_path)
    assert text.startswith("# Report <1>\n")
    assert "| a | b\\|c |\n|---|---|\n| 1 | x\\|y |" in text
    assert "![Curves](plots/curves.png)" in text


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    text = to_html(blocks(tmp_path), "t")
    assert "<h1>Report &lt;1&gt;</h1>" in text
    assert "<b>bold</b> and <code>code</code> &amp; more" in text
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in text
    assert 'data-file="curves.png"' in text
    assert "plots/curves.png" not in text  # nothing to fetch from beside the file
    assert "<script" not in text
