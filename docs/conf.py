"""Sphinx configuration of the sklearn-tser documentation."""

import os
import re
import sys
from pathlib import Path

import sklearn_tser

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for _gallery_order
os.environ.setdefault("MPLBACKEND", "Agg")

project = "sklearn-tser"
author = "The sklearn-tser developers"
copyright = "2024-2025, The sklearn-tser developers"
release = sklearn_tser.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
# The *_results.md files are included by benchmarks.md, not pages of their own.
exclude_patterns = ["_build", "*_results.md", "**/GALLERY_HEADER.rst"]
html_static_path = ["_static"]
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-tser {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}

autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # the included results may start at H2

# sphinx-gallery: the examples in ../examples. Those on synthetic clips (the
# quick start and the embeddings, about a minute each on a CPU; the Dask cluster,
# about 10 s) are executed, so the gallery shows their figures and output; the
# others need corpora and are rendered without output. ``make html-noplot``
# executes none.
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"plot_(quick_start|embeddings|dask_cluster)\.py$",
    "ignore_pattern": r"__init__\.py|ruff\.toml",
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "doc_module": ("sklearn_tser",),
    "backreferences_dir": str(HERE / "generated" / "backreferences"),
    "reference_url": {"sklearn_tser": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
}

# benchmarks.md includes the files written by benchmark runs when they exist,
# and says that no results are published otherwise: the marker
# ``<!-- some-name-results -->`` stands for ``docs/some_name_results.md``.
_RESULTS_MARKER = re.compile(r"<!-- ([a-z0-9-]+-results) -->")


def _results_text(match):
    name = match.group(1).replace("-", "_") + ".md"
    if (HERE / name).is_file():
        return f"```{{include}} {name}\n```\n"
    return (
        "```{note}\nNo results are published in this build yet: run the "
        f"benchmarks (see above) to produce ``docs/{name}``.\n```\n"
    )


def _include_benchmark_results(app, docname, source):
    if docname == "benchmarks":
        source[0] = _RESULTS_MARKER.sub(_results_text, source[0])


def _always_reread_benchmarks(app, env, added, changed, removed):
    # The page depends on a file that may appear, change or go at any time.
    return ["benchmarks"] if "benchmarks" in env.found_docs else []


def setup(app):
    app.connect("source-read", _include_benchmark_results)
    app.connect("env-get-outdated", _always_reread_benchmarks)
