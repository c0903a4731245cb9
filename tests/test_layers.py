"""The layers of docs/architecture.md: no lower layer imports a higher one, no import cycle.

Every module of the package is parsed with :mod:`ast`; every import counts, at
any depth (inside functions too), relative ones resolved against the module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mvtec_sklearn"

#: Layer -> the layers directly below it (docs/architecture.md); it may import
#: those and, following the table downwards, everything below them.
BELOW = {
    "utils": set(),
    "datasets": {"utils"},
    "features": {"datasets"},
    "analysis": {"features"},
    "detectors": {"features"},
    "metrics": {"detectors"},
    "model_selection": {"metrics"},
    "plotting": {"metrics"},
    "deploy": {"detectors", "model_selection", "plotting"},
    "benchmark": {"analysis", "deploy"},
    "_cli_deploy": {"benchmark"},
    "cli": {"_cli_deploy"},
}


def allowed_imports(below):
    """Layer -> every layer it may import (the transitive closure of ``below``)."""
    allowed = {}

    def closure(layer):
        if layer not in allowed:
            allowed[layer] = set()
            for lower in below[layer]:
                allowed[layer] |= {lower} | closure(lower)
        return allowed[layer]

    for layer in below:
        closure(layer)
    return allowed


def module_name(path, package=PACKAGE):
    """``mvtec_sklearn.datasets._io`` for ``.../mvtec_sklearn/datasets/_io.py``."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test):
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_nodes(tree):
    """The statements run on import: the module body and its ``if``/``try`` blocks."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If):
            stack += [] if _is_type_checking(node.test) else node.body + node.orelse
        elif isinstance(node, ast.Try):
            stack += node.body + node.orelse + node.finalbody
            stack += [stmt for handler in node.handlers for stmt in handler.body]


def imports(path, package=PACKAGE, module_level=False):
    """``(line, imported module)`` for every import in the file ``path``.

    ``from a import b`` counts as an import of ``a.b`` when that is a module of
    the package, else of ``a``.
    """
    name = module_name(path, package)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = _module_level_nodes(tree) if module_level else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".")
                base = parts[: len(parts) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((node.lineno, sub if _module_path(sub, package) else source))
    return found


def _module_path(name, package=PACKAGE):
    """The file of module ``name`` of the package, or None."""
    parts = name.split(".")
    if parts[0] != package.name:
        return None
    base = package.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def layer_of(name):
    """``datasets`` for ``mvtec_sklearn.datasets._io``; None for the package root."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_violations(package=PACKAGE, below=BELOW):
    """``"file:line: layer A imports layer B (higher)"`` for every import against the table."""
    allowed = allowed_imports(below)
    problems = []
    for path in sorted(package.rglob("*.py")):
        source = layer_of(module_name(path, package))
        for line, target_name in imports(path, package):
            if not target_name.startswith(package.name + "."):
                continue
            target = layer_of(target_name)
            if source is None or target in (None, source):
                continue
            if source not in allowed or target not in allowed[source]:
                problems.append(
                    f"{path.relative_to(package.parent)}:{line}: layer {source!r} imports "
                    f"layer {target!r} ({target_name}), which is not below it"
                )
    return problems


def find_cycles(graph):
    """Every cycle of the directed ``graph`` (node -> set of nodes), each as a node list."""
    cycles, done = [], set()

    def visit(node, trail):
        if node in trail:
            cycles.append(trail[trail.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*trail, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return cycles


def subpackage_cycles(package=PACKAGE):
    """Import cycles, at module level, between the modules of one subpackage."""
    graph = {}
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        graph[name] = {
            target
            for _, target in imports(path, package, module_level=True)
            if target != name and _module_path(target, package)
            and layer_of(target) == layer_of(name) and layer_of(name) is not None
        }
    return find_cycles(graph)


def test_every_subpackage_has_a_layer():
    layers = {layer_of(module_name(p)) for p in PACKAGE.rglob("*.py")} - {None}
    assert layers == set(BELOW)
    assert all(set(lower) <= set(BELOW) for lower in BELOW.values())


def test_no_lower_layer_imports_a_higher_one():
    problems = layer_violations()
    assert not problems, "\n".join(problems)


def test_no_import_cycle_inside_a_subpackage():
    cycles = subpackage_cycles()
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_bad_import_is_named_with_file_line_and_both_layers(tmp_path):
    package = tmp_path / "mvtec_sklearn"
    _write(package, {
        "__init__.py": "",
        "utils/__init__.py": "from ._files import x\n",
        "utils/_files.py": "x = 1\n",
        "datasets/__init__.py": "from mvtec_sklearn.utils import x\n",
        "datasets/_io.py": (
            "def read():\n"
            "    from ..detectors import KNN  # a lower layer, inside a function\n"
        ),
        "detectors/__init__.py": "from .. import datasets\nfrom ..utils import _files\n",
    })
    below = {"utils": set(), "datasets": {"utils"}, "detectors": {"datasets"}}
    assert layer_violations(package, below) == [
        "mvtec_sklearn/datasets/_io.py:2: layer 'datasets' imports layer 'detectors' "
        "(mvtec_sklearn.detectors), which is not below it"
    ]
    # only the table allows: without utils below datasets, that import is reported too
    assert layer_violations(package, {**below, "datasets": set()})[0].startswith(
        "mvtec_sklearn/datasets/__init__.py:1: layer 'datasets' imports layer 'utils'"
    )


def test_a_cycle_at_module_level_is_found_and_one_in_a_function_is_not(tmp_path):
    package = tmp_path / "mvtec_sklearn"
    _write(package, {
        "__init__.py": "",
        "benchmark/__init__.py": "from ._runner import run\n",
        "benchmark/_runner.py": "from ._report import write\n\ndef run():\n    pass\n",
        "benchmark/_report.py": "from ._runner import run\n\ndef write():\n    pass\n",
        "benchmark/_lazy.py": "def f():\n    from . import _plan\n",
        "benchmark/_plan.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from ._lazy import f\nfrom . import _lazy\n",
    })
    assert subpackage_cycles(package) == [
        ["mvtec_sklearn.benchmark._runner", "mvtec_sklearn.benchmark._report",
         "mvtec_sklearn.benchmark._runner"]
    ]


@pytest.mark.parametrize(
    ("below", "layer", "expected"),
    [(BELOW, "metrics", {"detectors", "features", "datasets", "utils"}),
     (BELOW, "utils", set()),
     (BELOW, "deploy", {"detectors", "model_selection", "plotting", "metrics", "features",
                        "datasets", "utils"})],
)
def test_allowed_imports_follow_the_table_downwards(below, layer, expected):
    assert allowed_imports(below)[layer] == expected
