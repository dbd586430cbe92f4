"""Sphinx configuration of the series' website.

Do not run Sphinx on this folder by hand: ``python -m tools.book`` (``make book``) stages it,
with copies of the notebooks, the course guide and the appendices whose links it rewrote, into
``build/book-src/`` and builds ``build/book/`` from there. The tool writes ``_book.json`` beside
this file in the staged copy (the repository's URL and branch, read from ``tools/colab.py``).

Offline by design: the notebooks are never executed (their stored outputs are shown), MathJax 2.7
is served from the site itself (``_static/mathjax``, copied from the pip package
jupyter_server_mathjax), and nothing is loaded from a CDN.
"""

import json
from pathlib import Path

_SETTINGS_FILE = Path(__file__).with_name("_book.json")
if not _SETTINGS_FILE.is_file():
    raise RuntimeError(f"{_SETTINGS_FILE} is missing: build the site with `python -m tools.book` (or `make book`)")
_settings = json.loads(_SETTINGS_FILE.read_text())

project = "Conditional VAEs, from the ELBO to interactive sampling"
author = "The CVAE tutorial authors"
copyright = _settings["credit"]  # tools.colab.credit_line(): authors, repository, licences (LICENSE-TEXT.md)
html_title = "Conditional VAEs: the notebook series"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
exclude_patterns = ["_build", "_doctrees", "_static", "**.ipynb_checkpoints", "_book.json", "_warnings.log"]

# ---- Notebooks: stored outputs only, never executed -------------------------------------------------
nb_execution_mode = "off"
# The committed notebooks keep no widget state, so a widget view would render as an empty box and
# pull require.js and the widget manager from a CDN: show each widget's text fallback instead.
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
nb_mime_priority_overrides = [(builder, _WIDGET_VIEW, None) for builder in ("html", "dirhtml", "singlehtml")]
nb_ipywidgets_js = {}
nb_render_markdown_format = "gfm"  # text/markdown outputs (notebook 7's tables) are GitHub markdown

# ---- Markdown ---------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3  # links such as 02_the_encoder.ipynb#the-prior-network resolve to headings
myst_update_mathjax = False  # myst would write a MathJax 3/4 configuration; this site runs MathJax 2.7

# ---- Math: MathJax 2.7 from the site itself ---------------------------------------------------------
# A relative mathjax_path is relative to _static/; tools.book copies jupyter_server_mathjax's files there.
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
_NATIVE_MML_FONTS = {
    f"@font-face /*{i}*/": {"font-family": family, "src": f"local('{family}')", **bold}
    for i, (family, bold) in enumerate(
        [
            ("MathJax_Caligraphic-WEB", {}),
            ("MathJax_Caligraphic-WEB", {"font-weight": "bold"}),
            ("MathJax_AMS-WEB", {}),
            ("MathJax_Script-WEB", {}),
            ("MathJax_Fraktur-WEB", {}),
            ("MathJax_Fraktur-WEB", {"font-weight": "bold"}),
        ],
        start=1,
    )
}
mathjax2_config = {
    # Only what Sphinx marked as math (class "math", delimited by \( \) and \[ \]) is typeset;
    # a dollar sign in prose or in a printed output is left alone.
    "tex2jax": {
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        "processEscapes": False,
        "processEnvironments": True,
        "processClass": "math",
        "ignoreClass": "tex2jax_ignore|mathjax_ignore",
    },
    # The hidden MathML that MathJax adds for screen readers is styled by the native-MathML output, whose
    # six @font-face rules point at TeX fonts (fonts/HTML-CSS/TeX/otf) that jupyter_server_mathjax does
    # not ship: each would be a 404 on every page. A local() source instead: no request, the same fallback.
    "NativeMML": {"styles": _NATIVE_MML_FONTS},
    # jupyter_server_mathjax ships the STIX-Web fonts only (no TeX fonts): use them, and never look for
    # fonts installed on the reader's machine or for image fonts. MathJax measures with a blank font
    # loaded from url('about:blank'), which Chromium refuses with a console error: a local() source that
    # does not exist gives the same blank fallback without a request.
    "HTML-CSS": {
        "availableFonts": [],
        "preferredFont": None,
        "webFont": "STIX-Web",
        "imageFont": None,
        "styles": {"@font-face": {"font-family": "MathJax_Blank", "src": "local('MathJax_Blank')"}},
    },
    "messageStyle": "none",
    "menuSettings": {"zoom": "None"},
}

# ---- HTML -------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["book.css"]
# Light by default (the stored figures have white backgrounds); without a default the theme logs a
# console error on a reader's first visit ("Got invalid theme mode").
html_context = {"default_mode": "light"}
html_use_index = False  # no index entries: no empty "Index" page
html_show_sourcelink = False
html_theme_options = {
    "repository_url": _settings["repository_url"],
    "repository_branch": _settings["branch"],
    "path_to_docs": "notebooks",  # where the notebooks sit in the repository (the Colab button's path)
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
}
