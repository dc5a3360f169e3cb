"""Report blocks as Markdown and as one self-contained HTML page."""

import base64
import re
from html.parser import HTMLParser

import pytest

from imbal.study.report.render import Block, to_html, to_markdown

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))  # the bytes are embedded as they are


@pytest.fixture
def blocks(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "heat map.png").write_bytes(PNG)
    return [
        Block("h1", "Report <1>"),
        Block("h2", "Data & runs"),
        Block("h3", "Findings"),
        Block("p", "Use a / b: p < 0.05"),
        Block("note", "SYNTHETIC data"),
        Block(
            "table",
            header=["sampler \\ loss", "ce", "ce+f1"],
            rows=[["uniform", "0.5", "0.7"], ["oversample", "<b>", "0.9"]],
            bold={(1, 2)},
        ),
        Block("image", "Heat & map", path=tmp_path / "figures" / "heat map.png"),
    ]


def test_markdown_of_each_block_kind(blocks, tmp_path):
    assert to_markdown(blocks, tmp_path) == "\n".join(
        [
            "# Report <1>",
            "",
            "## Data & runs",
            "",
            "### Findings",
            "",
            "Use a / b: p < 0.05",
            "",
            "> SYNTHETIC data",
            "",
            "| sampler \\ loss | ce | ce+f1 |",
            "|---|---|---|",
            "| uniform | 0.5 | 0.7 |",
            "| oversample | <b> | **0.9** |",
            "",
            "![Heat & map](figures/heat map.png)",  # relative to the report's folder
            "",
        ]
    )


def test_markdown_image_outside_the_report_folder_or_without_a_path_is_refused(blocks, tmp_path):
    with pytest.raises(ValueError):
        to_markdown(blocks[-1:], tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="image block 'x' has no path"):
        to_markdown([Block("image", "x")], tmp_path)


def test_an_empty_table_has_its_header_only(tmp_path):
    assert to_markdown([Block("table", header=["a", "b"])], tmp_path) == "| a | b |\n|---|---|\n"


class Tags(HTMLParser):
    """Every start tag with its attributes, the text, and whether each tag was closed."""

    VOID = frozenset({"meta", "img"})

    def __init__(self):
        super().__init__()
        self.starts, self.text, self.open = [], [], []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag

    def handle_data(self, data):
        self.text.append(data)


def test_html_holds_each_block_escaped_and_nested(blocks):
    page = to_html(blocks, "imbal report: <study>")
    tags = Tags()
    tags.feed(page)
    assert tags.open == []  # every element closed, in order
    assert "<title>imbal report: &lt;study&gt;</title>" in page
    assert "<h1>Report &lt;1&gt;</h1>" in page and "<h2>Data &amp; runs</h2>" in page
    assert "<h3>Findings</h3>" in page and "<p>Use a / b: p &lt; 0.05</p>" in page
    assert "<p class='note'>SYNTHETIC data</p>" in page
    assert (
        "<table><thead><tr><th>sampler \\ loss</th><th>ce</th><th>ce+f1</th></tr></thead><tbody>"
        "<tr><td>uniform</td><td>0.5</td><td>0.7</td></tr>"
        "<tr><td>oversample</td><td>&lt;b&gt;</td><td class='best'>0.9</td></tr></tbody></table>"
    ) in page
    assert "<b>" not in page  # a cell's text never becomes markup
    assert [t for t, _ in tags.starts].count("td") == 6 and "Heat & map" in tags.text


def test_html_is_self_contained(blocks):
    page = to_html(blocks, "t")
    tags = Tags()
    tags.feed(page)
    (img,) = [a for t, a in tags.starts if t == "img"]
    assert img["alt"] == "Heat & map"
    assert img["src"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert base64.b64decode(img["src"].split(",", 1)[1]) == PNG
    assert not {t for t, _ in tags.starts} & {"link", "script"}  # styles inline, nothing fetched
    assert "<style>" in page and "td.best" in page
    assert not re.search(r"(src|href)=['\"](?!data:)", page)


def test_html_image_without_a_path_is_refused():
    with pytest.raises(ValueError, match="has no path"):
        to_html([Block("image", "x")], "t")
