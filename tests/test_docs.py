"""The API reference documents every public name (a text check, no Sphinx)."""

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PUBLIC_MODULES = [
    "sklearn_tser",
    "sklearn_tser.datasets",
    "sklearn_tser.evaluation",
    "sklearn_tser.plotting",
    "sklearn_tser.exceptions",
]


def documented_names(text):
    """Fully qualified names that the reST ``text`` documents.

    Entries of ``autosummary`` blocks and ``.. data::``/``.. function::``/
    ``.. class::``/``.. auto*::`` directives, qualified by the preceding
    ``.. currentmodule::``.
    """
    names = set()
    module = None
    in_autosummary = False
    for line in text.splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module, in_autosummary = m[1], False
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif m := re.match(
            r"\.\. (?:auto)?(?:data|function|class|exception):: (\S+)", line
        ):
            name = m[1]
            names.add(name if "." in name or module is None else f"{module}.{name}")
            in_autosummary = False
        elif in_autosummary:
            if line and not line[0].isspace():
                in_autosummary = False
            elif (entry := line.strip()) and not entry.startswith(":"):
                names.add(f"{module}.{entry}" if module else entry)
    return names


def api_names():
    return set().union(*(documented_names(f.read_text()) for f in DOCS.glob("*.rst")))


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(module_name):
    module = importlib.import_module(module_name)
    missing = sorted(
        f"{module_name}.{name}"
        for name in module.__all__
        if f"{module_name}.{name}" not in api_names()
    )
    assert not missing, f"not in the API reference (docs/api.rst): {missing}"


def test_api_reference_lists_only_existing_names():
    for qualified in sorted(api_names()):
        module_name, _, name = qualified.rpartition(".")
        module = importlib.import_module(module_name)
        assert name in module.__all__, f"{qualified} is documented but not public"


def test_documented_names_parser():
    text = """
.. currentmodule:: pkg

.. autosummary::
   :toctree: generated/

   Foo
   bar

Some text mentioning Baz.

.. data:: __version__

.. currentmodule:: pkg.sub

.. autoclass:: Qux
"""
    assert documented_names(text) == {
        "pkg.Foo",
        "pkg.bar",
        "pkg.__version__",
        "pkg.sub.Qux",
    }


EXAMPLES = sorted((DOCS.parent / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_gallery_script(path):
    """An RST title in the docstring, ``# %%`` cells, and valid Python."""
    import ast

    source = path.read_text()
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring is not None, "no module docstring"
    over, title, under = docstring.strip("\n").splitlines()[:3]
    assert set(over) == set(under) == {"="}, "title must be over- and underlined"
    assert len(over) == len(under) >= len(title.strip())
    assert source.count("\n# %%\n") >= 2


@pytest.mark.parametrize(
    "name, variable",
    [
        ("plot_ravdess_protocols.py", "SKLEARN_TSER_RAVDESS"),
        ("plot_iemocap_loso.py", "SKLEARN_TSER_IEMOCAP"),
    ],
)
def test_corpus_examples_stop_with_a_message(name, variable, tmp_path):
    import os
    import subprocess
    import sys

    missing = tmp_path / "no_corpus_here"
    env = {**os.environ, variable: str(missing), "MPLBACKEND": "Agg"}
    for argv in ([], [str(missing)]):
        result = subprocess.run(
            [sys.executable, str(DOCS.parent / "examples" / name), *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "not found at" in result.stdout and str(missing) in result.stdout
        assert "Traceback" not in result.stderr


def test_default_comments_in_examples_match_the_defaults():
    """``name=value,  # default: X`` comments in the examples say the real
    default of the classifier or the transformer."""
    from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer

    defaults = {
        **LogMelTransformer().get_params(),
        **EmotionEmbeddingClassifier().get_params(),
    }
    # One line each: a value must not run over lines to an earlier name.
    pattern = re.compile(r"(\w+)=[^,\n]+,[ \t]*#[^\n]*?default: (?:ResNet-)?([\w.]+)")
    found = 0
    for path in sorted((DOCS.parent / "examples").glob("*.py")):
        for name, said in pattern.findall(path.read_text()):
            assert str(defaults[name]) == said, f"{path.name}: {name}"
            found += 1
    assert found >= 5
