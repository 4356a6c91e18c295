"""No import cycles between palfrey's modules, lazy imports included.

A lazy import inside a function hides a cycle from Python (the import succeeds because the other
module has finished loading by the time the function runs) but not from the reader: the two modules
still cannot be understood, tested or moved apart. So the graph is built from the source with `ast`:
every `import`/`from ... import` anywhere in a module counts, except those under
`if TYPE_CHECKING:`, which exist only for annotations and never run.

Importing `palfrey.a.b` also runs `palfrey/a/__init__.py`; that implicit edge is left out, because a
package's `__init__` importing its own submodules would otherwise make every submodule a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "palfrey"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, this: str, is_package: bool, modules: set[str]) -> set[str]:
    """Every palfrey module `tree` imports at any depth, `if TYPE_CHECKING:` bodies excluded."""
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = this if is_package else this.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                target = resolve(f"{base}.{alias.name}")  # a submodule, or an attribute of `base`
                if target:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(this)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
        for name, path in paths.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def _describe(cycle: list[str], graph: dict[str, set[str]]) -> str:
    """One concrete loop through the component, e.g. `a -> b -> a`, with every edge in it."""
    members = set(cycle)
    edges = sorted(f"{a} -> {b}" for a in cycle for b in graph[a] if b in members)
    return f"{' <-> '.join(cycle)}\n    edges: " + "\n           ".join(edges)


def test_graph_sees_lazy_imports_and_skips_type_checking() -> None:
    graph = import_graph()
    assert "palfrey.config" in graph["palfrey.cli"]
    # server.py imports the WSGI middleware inside a function: a lazy import still counts.
    assert "palfrey.interfaces.wsgi" in graph["palfrey.server.server"]
    # metrics/counters imports the request cycle only under TYPE_CHECKING.
    assert "palfrey.http.cycle" not in graph["palfrey.metrics.counters"]


def test_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles between palfrey modules:\n" + "\n".join(
        _describe(cycle, graph) for cycle in cycles
    )


def test_test_modules_do_not_import_each_other() -> None:
    """Helpers shared by test modules live in support modules and conftest.py: importing from another
    `test_*` module couples the two and can collect its fixtures (or tests) twice."""
    tests_dir = Path(__file__).resolve().parent
    offenders = []
    for path in sorted(tests_dir.glob("test_*.py")):
        this = f"tests.{path.stem}"
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [f"{this} imports {name}" for name in names if name.startswith("tests.test_")]
    assert not offenders, "\n".join(offenders)
