"""Links in the markdown of the series' website (``python -m tools.book``): find them, and rewrite them for the site.

A link to a page of the site points at that page; a link to any other file of the repository points at
the file on GitHub (``tools.colab.repository_url()``, branch ``tools.colab.BRANCH``), an image among them
copied into the site instead; the notebooks' Colab badge image becomes a local copy. Code (fenced blocks,
inline spans) is left alone. A link to a file that does not exist is collected, for a clear error.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.colab import BRANCH, repository_url

ROOT = Path(__file__).resolve().parents[1]
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "_static/colab-badge.svg"
REPO_ASSETS = "_repo"  # images of the repository that a page shows are copied here in the staging folder


# The "](target)" or "](target "title")" that ends an inline link, with "![alt" before it for an image
# (only the end: a link's text may span lines); <a href="...">, <img src="...">; [label]: target
MD_LINK = re.compile(r"(?P<image>!\[[^\]]*)?\]\((?P<target><[^>]*>|[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
HTML_LINK = re.compile(r"""(?P<attr>\b(?:href|src))=(?P<quote>["'])(?P<target>[^"']*)(?P=quote)""")
REFERENCE_DEF = re.compile(r"^(?P<lead> {0,3}\[[^\]]+\]:\s*)(?P<target>\S+)", re.MULTILINE)
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+).+?\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def outside_code(text: str, edit: Callable[[str], str]) -> str:
    """``text`` with ``edit`` applied to everything outside fenced code blocks and inline code spans."""
    out, fence = [], None
    for line in text.splitlines(keepends=True):
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            out.append(line)
        elif opened:
            fence = opened.group(1)
            out.append(line)
        else:
            pieces, last = [], 0
            for span in CODE_SPAN.finditer(line):
                pieces += [edit(line[last : span.start()]), span.group(0)]
                last = span.end()
            out.append("".join([*pieces, edit(line[last:])]))
    return "".join(out)


def link_targets(text: str) -> list[str]:
    """Every link and image target in a markdown text (outside code), in order."""
    found: list[str] = []

    def collect(piece: str) -> str:
        found.extend(m.group("target").strip("<>") for m in MD_LINK.finditer(piece))
        found.extend(m.group("target") for m in HTML_LINK.finditer(piece))
        found.extend(m.group("target") for m in REFERENCE_DEF.finditer(piece))
        return piece

    outside_code(text, collect)
    return found


def is_outside_link(target: str) -> bool:
    """A relative link that is neither a web address, an anchor, an attachment nor a file of the site."""
    return bool(target) and not target.startswith("#") and not SCHEME.match(target)


@dataclass
class LinkRewriter:
    """Rewrites the relative links of one staged page (see the module docstring); collects broken ones."""

    site: dict[str, str]  # repository path -> page file in the site
    staging: Path
    repo_root: Path = ROOT
    broken: list[str] = field(default_factory=list)

    def rewrite(self, text: str, source: str) -> str:
        """``text`` of the repository file ``source`` with its links rewritten for the site."""

        def markdown(match: re.Match) -> str:
            target = self.target(match.group("target").strip("<>"), source, image=bool(match.group("image")))
            return f"{match.group('image') or ''}]({target}{match.group('title') or ''})"

        def html(match: re.Match) -> str:
            target = self.target(match.group("target"), source, image=match.group("attr") == "src")
            return f"{match.group('attr')}={match.group('quote')}{target}{match.group('quote')}"

        def reference(match: re.Match) -> str:
            return match.group("lead") + self.target(match.group("target"), source, image=False)

        def edit(piece: str) -> str:
            piece = MD_LINK.sub(markdown, piece)
            piece = HTML_LINK.sub(html, piece)
            return REFERENCE_DEF.sub(reference, piece)

        return outside_code(text, edit)

    def target(self, target: str, source: str, *, image: bool) -> str:
        """Where ``target``, a link in the repository file ``source``, points in the site."""
        if target == COLAB_BADGE_IMAGE:
            return LOCAL_BADGE
        if not is_outside_link(target):
            return target
        path, _, fragment = target.partition("#")
        anchor = f"#{fragment}" if fragment else ""
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), urllib.parse.unquote(path)))
        if resolved.startswith("../") or resolved == "..":
            self.broken.append(f"{source}: the link {target!r} points outside the repository")
            return target
        if resolved in self.site:
            return self.site[resolved] + anchor
        file = self.repo_root / resolved
        if not file.exists():
            self.broken.append(f"{source}: the link {target!r} points at {resolved}, which does not exist")
            return target
        if image and file.is_file():  # a picture must load from the site itself
            copy = self.staging / REPO_ASSETS / resolved
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, copy)
            return urllib.parse.quote(f"{REPO_ASSETS}/{resolved}")
        kind = "tree" if file.is_dir() else "blob"
        return f"{repository_url()}/{kind}/{BRANCH}/{urllib.parse.quote(resolved.rstrip('/'))}{anchor}"
