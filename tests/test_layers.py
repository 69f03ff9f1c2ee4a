"""The package's import graph: no cycle, not even through a function-local import, and the
lower layers import no strategy (speculative, context, routing)."""
import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "testbed"
STRATEGIES = ("testbed.speculative", "testbed.context", "testbed.routing")
LOWER = ("testbed.config", "testbed.sections", "testbed.registry", "testbed.request", "testbed.arm",
         "testbed.engines.base", "testbed.drive", "testbed.metrics", "testbed.workloads")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Every testbed module `path` imports anywhere in its body (a package's __init__ counts as imported),
    and every module it names in a string (importlib.import_module, as testbed.plugins does)."""
    out = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in modules:
            names = [node.value]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")     # importing a.b.c runs a and a.b first
            out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules
    return out


def graph() -> nx.DiGraph:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(paths)
    for name, path in paths.items():
        g.add_edges_from((name, dep) for dep in imports(path, set(paths)) if dep != name)
    return g


def package_edge(a: str, b: str) -> bool:
    """A package importing its own submodule (or a module its parent package): not a cycle of layers."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycle():
    g = graph()
    g.remove_edges_from([(a, b) for a, b in g.edges if package_edge(a, b)])
    cycles = [c for c in nx.simple_cycles(g) if len(c) > 1]
    assert not cycles, f"import cycles: {sorted(cycles, key=len)[:5]}"


def test_lower_layers_import_no_strategy():
    """Not directly, nor through another module (testbed.plugins imports every strategy)."""
    g = graph()
    bad = {a: sorted(b for b in nx.descendants(g, a) if b.startswith(STRATEGIES)) for a in g if a.startswith(LOWER)}
    assert not {a: b for a, b in bad.items() if b}


def test_graph_sees_function_local_and_string_imports():
    """The checks above would pass vacuously if the walk missed imports inside functions or by name."""
    g = graph()
    assert g.has_edge("testbed.cli", "testbed.runner")        # cli imports the runner inside cmd_run
    assert g.has_edge("testbed.plugins", "testbed.speculative.config")
