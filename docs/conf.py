"""Sphinx configuration of the sklearn-tser documentation."""

import os
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
exclude_patterns = [
    "_build",
    "benchmark_results.md",
    "ablation_results.md",
    "feature_results.md",
    "thread_results.md",
    "scale_results.md",
    "warping_results.md",
    "speaker_results.md",
    "fit_results.md",
    "averaging_results.md",
    "cheaper_results.md",
    "schedule_results.md",
    "adversarial_results.md",
    "pooling_results.md",
    "precision_results.md",
    "triplet_results.md",
    "decay_results.md",
    "dilation_results.md",
    "dropout_results.md",
    "trim_results.md",
    "crop_results.md",
    "triplet60_results.md",
    "prototype_results.md",
    "bands_results.md",
    "stem_lr_results.md",
    "triplet_batch_results.md",
    "crops_results.md",
    "hop_results.md",
    "deltas_results.md",
    "hop5_results.md",
    "rules_results.md",
    "centering_results.md",
    "ensemble_results.md",
    "ensemble_screen_results.md",
    "cheap_ensemble_results.md",
    "threaded_ensemble_results.md",
    "ensemble_mixed_results.md",
    "ensemble_seeds_results.md",
    "scale_ensemble_results.md",
    "instance_fit_results.md",
    "se_results.md",
    "mixup_screen_results.md",
    "mixup_results.md",
    "mixup_run_results.md",
    "freq_mixstyle_results.md",
    "augmentation_seeds_results.md",
    "augmentation_three_seeds_results.md",
    "copy_paste_rate_results.md",
    "**/GALLERY_HEADER.rst",
]
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
# and says that no results are published otherwise.
_RESULTS = {
    "<!-- benchmark-results -->": "benchmark_results.md",
    "<!-- ablation-results -->": "ablation_results.md",
    "<!-- feature-results -->": "feature_results.md",
    "<!-- thread-results -->": "thread_results.md",
    "<!-- scale-results -->": "scale_results.md",
    "<!-- warping-results -->": "warping_results.md",
    "<!-- speaker-results -->": "speaker_results.md",
    "<!-- fit-results -->": "fit_results.md",
    "<!-- averaging-results -->": "averaging_results.md",
    "<!-- cheaper-results -->": "cheaper_results.md",
    "<!-- schedule-results -->": "schedule_results.md",
    "<!-- adversarial-results -->": "adversarial_results.md",
    "<!-- pooling-results -->": "pooling_results.md",
    "<!-- precision-results -->": "precision_results.md",
    "<!-- triplet-results -->": "triplet_results.md",
    "<!-- decay-results -->": "decay_results.md",
    "<!-- dilation-results -->": "dilation_results.md",
    "<!-- dropout-results -->": "dropout_results.md",
    "<!-- trim-results -->": "trim_results.md",
    "<!-- crop-results -->": "crop_results.md",
    "<!-- triplet60-results -->": "triplet60_results.md",
    "<!-- prototype-results -->": "prototype_results.md",
    "<!-- bands-results -->": "bands_results.md",
    "<!-- stem-lr-results -->": "stem_lr_results.md",
    "<!-- triplet-batch-results -->": "triplet_batch_results.md",
    "<!-- crops-results -->": "crops_results.md",
    "<!-- hop-results -->": "hop_results.md",
    "<!-- deltas-results -->": "deltas_results.md",
    "<!-- hop5-results -->": "hop5_results.md",
    "<!-- rules-results -->": "rules_results.md",
    "<!-- centering-results -->": "centering_results.md",
    "<!-- ensemble-results -->": "ensemble_results.md",
    "<!-- ensemble-screen-results -->": "ensemble_screen_results.md",
    "<!-- cheap-ensemble-results -->": "cheap_ensemble_results.md",
    "<!-- threaded-ensemble-results -->": "threaded_ensemble_results.md",
    "<!-- ensemble-mixed-results -->": "ensemble_mixed_results.md",
    "<!-- ensemble-seeds-results -->": "ensemble_seeds_results.md",
    "<!-- scale-ensemble-results -->": "scale_ensemble_results.md",
    "<!-- instance-fit-results -->": "instance_fit_results.md",
    "<!-- se-results -->": "se_results.md",
    "<!-- mixup-screen-results -->": "mixup_screen_results.md",
    "<!-- mixup-results -->": "mixup_results.md",
    "<!-- mixup-run-results -->": "mixup_run_results.md",
    "<!-- freq-mixstyle-results -->": "freq_mixstyle_results.md",
    "<!-- augmentation-seeds-results -->": "augmentation_seeds_results.md",
    "<!-- augmentation-three-seeds-results -->": "augmentation_three_seeds_results.md",
    "<!-- copy-paste-rate-results -->": "copy_paste_rate_results.md",
}


def _include_benchmark_results(app, docname, source):
    if docname != "benchmarks":
        return
    for marker, name in _RESULTS.items():
        if marker not in source[0]:
            continue
        if (HERE / name).is_file():
            text = f"```{{include}} {name}\n```\n"
        else:
            text = (
                "```{note}\nNo results are published in this build yet: run the "
                f"benchmarks (see above) to produce ``docs/{name}``.\n```\n"
            )
        source[0] = source[0].replace(marker, text)


def _always_reread_benchmarks(app, env, added, changed, removed):
    # The page depends on a file that may appear, change or go at any time.
    return ["benchmarks"] if "benchmarks" in env.found_docs else []


def setup(app):
    app.connect("source-read", _include_benchmark_results)
    app.connect("env-get-outdated", _always_reread_benchmarks)
