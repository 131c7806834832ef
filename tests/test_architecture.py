"""The package layout is the architecture: these checks keep it from eroding.

* The layer contract in ``pyproject.toml`` (``[tool.importlinter]``) holds: a
  package imports only packages below it, siblings marked independent never
  import each other, and ``functions/`` sits on top of the whole library.
* No two modules import each other, directly or through others, not even
  lazily inside a function or under ``TYPE_CHECKING`` (grimp sees those too).
* ``rag_core`` never imports the Functions runtime, so it runs in CLIs,
  benchmarks and the no-host mode unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_layer_contract_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {m: sorted(d for d in graph.find_modules_directly_imported_by(m) if d in modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if child < len(edges[node]):
                work.append((node, child + 1))
                nxt = edges[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("rag_core", "functions", cache_dir=None)
    assert _cycles(graph, "rag_core") == []
    assert _cycles(graph, "functions") == []


def test_cycle_finder_sees_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph, "pkg") == [["pkg.a", "pkg.b", "pkg.c"]]


def test_core_never_imports_the_functions_runtime() -> None:
    graph = grimp.build_graph("rag_core", include_external_packages=True, cache_dir=None)
    importers = graph.find_modules_that_directly_import("azure")
    offenders = [
        (detail["importer"], detail["line_contents"])
        for importer in importers
        for detail in graph.get_import_details(importer=importer, imported="azure")
        if "azure.functions" in detail["line_contents"]
    ]
    assert offenders == []


def test_storage_sdk_stays_behind_the_storage_module() -> None:
    """Only ``rag_core.base.storage`` imports the Azure Storage SDK and azure-core; the
    rest of the library takes clients and errors from it (identity is imported where
    a credential is built)."""
    graph = grimp.build_graph("rag_core", include_external_packages=True, cache_dir=None)
    sdk = ("from azure.storage", "from azure.data", "from azure.core", "import azure.storage", "import azure.data")
    offenders = sorted(
        {
            detail["importer"]
            for importer in graph.find_modules_that_directly_import("azure")
            for detail in graph.get_import_details(importer=importer, imported="azure")
            if detail["line_contents"].startswith(sdk)
        }
        - {"rag_core.base.storage"}
    )
    assert offenders == []
