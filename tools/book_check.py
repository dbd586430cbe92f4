"""The last check of the series' website (``python -m tools.book``): every page offline and whole.

:func:`check_site` reads every built page: no script, stylesheet, image, font or CSS import from an
http(s) URL, and every local link or image names an existing file (and, for a #fragment, an existing id).
"""

from __future__ import annotations

import re
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

from tools.book_links import SCHEME

RESOURCE_ATTRS = {
    "script": "src",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "video": "src",
    "audio": "src",
    "embed": "src",
    "object": "data",
}
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])(?P<url>(?:https?:)?//[^'")\s]+)""")


class PageParser(HTMLParser):
    """The ids, links, loaded resources and inline styles of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.resources: list[tuple[str, str]] = []  # (tag, url)
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for key in ("id", "name") if tag == "a" else ("id",):
            if values.get(key):
                self.ids.add(values[key])
        if tag == "a" and "href" in values:
            self.links.append(values["href"])
        elif tag == "link" and values.get("href"):
            self.resources.append((f"link rel={values.get('rel', '')}", values["href"]))
        elif tag in RESOURCE_ATTRS and values.get(RESOURCE_ATTRS[tag]):
            self.resources.append((tag, values[RESOURCE_ATTRS[tag]]))
        if values.get("style"):
            self.styles.append(values["style"])
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def is_web_url(url: str) -> bool:
    return url.startswith(("http://", "https://", "//"))


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def check_site(out: Path) -> list[str]:
    """Problems of the built site: web resources (script, stylesheet, image, font, CSS import), local links
    or images to missing files, links to missing anchors. Empty when the site is offline and whole."""
    pages = {path: parse_page(path) for path in sorted(out.rglob("*.html")) if "_static" not in path.parts}
    problems = []
    for css in sorted(out.rglob("*.css")):
        for match in CSS_URL.finditer(css.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{css.relative_to(out)}: loads {match.group('url')} from the web")
    for path, page in pages.items():
        name = path.relative_to(out).as_posix()
        for tag, url in page.resources:
            if is_web_url(url):
                problems.append(f"{name}: <{tag}> loads {url} from the web")
            elif not url.startswith("data:"):
                problems += local_target_problems(out, path, url, pages, f"{name}: <{tag}>")
        for style in page.styles:
            problems += [f"{name}: an inline style loads {m.group('url')}" for m in CSS_URL.finditer(style)]
        for href in page.links:
            if href and not SCHEME.match(href) and not href.startswith("//"):
                problems += local_target_problems(out, path, href, pages, f"{name}: the link")
    return problems


def local_target_problems(out: Path, page: Path, url: str, pages: dict[Path, PageParser], what: str) -> list[str]:
    """[] when ``url`` (relative to ``page``) names an existing file, and an existing id for a #fragment."""
    parts = urllib.parse.urlsplit(url)
    target = (page.parent / urllib.parse.unquote(parts.path)).resolve() if parts.path else page.resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(out.resolve()):
        return [f"{what} {url!r} leaves the site"]
    if not target.is_file():
        return [f"{what} {url!r} points at a missing file"]
    fragment = urllib.parse.unquote(parts.fragment)
    if fragment and target.suffix == ".html":
        ids = (pages.get(target) or parse_page(target)).ids
        if fragment not in ids:
            return [f"{what} {url!r} points at an anchor that {target.name} does not have"]
    return []
