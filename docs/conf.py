"""Sphinx configuration: user guide (Markdown via MyST) + API reference (numpydoc)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

project = "mvtec_sklearn"
author = "mvtec_sklearn developers"
copyright = "2026, mvtec_sklearn developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
html_theme = "alabaster"
# No network at build time: intersphinx inventories are not fetched.
intersphinx_mapping = {}
suppress_warnings = ["myst.header"]
