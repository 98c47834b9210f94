"""The project's import graph, read from the source with ``ast``: which top-level package
imports which, and which module reaches into another's private names.  The structure test
(tests/core/test_structure.py) holds the layout's rules; ``python -m devtools.structure`` prints
the graph as a Mermaid drawing for docs/DEVELOPING.md."""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("accounts", "locations", "crossings", "connections", "stories", "analytics", "realtime")
PACKAGES = ("config", "core", "devtools", "bench", "deploy", *APPS)


@dataclass(frozen=True)
class Import:
    source: str  # dotted module that imports
    target: str  # dotted module imported
    names: tuple[str, ...]  # names taken from it (from-imports), or () for a plain import
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "migrations" not in p.parts)


def imports() -> list[Import]:
    """Every import of a project module, from every project module (tests excluded)."""
    found = []
    for path in source_files():
        source = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [Import(source, alias.name, (), node.lineno) for alias in node.names
                          if alias.name.split(".")[0] in PACKAGES]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in PACKAGES:
                    found.append(Import(source, node.module, tuple(a.name for a in node.names), node.lineno))
    return found


def private_uses() -> list[str]:
    """``from m import _x`` and ``m._x`` where ``m`` is another project module."""
    problems = []
    for path in source_files():
        source = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        modules: dict[str, str] = {}  # local name -> project module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PACKAGES:
                        modules[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                for alias in node.names:
                    if _private(alias.name) and node.module != source:
                        problems.append(f"{source}:{node.lineno} imports {node.module}.{alias.name}")
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and modules[node.value.id] != source
                    and _is_module(modules[node.value.id])):
                problems.append(f"{source}:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    return problems


_LIFETIME = re.compile(r"(^|_)TTL(_|$)|CACHE_S$")


def cache_lifetimes_outside_settings() -> list[str]:
    """Module-level constants named like a cache lifetime (``*_TTL*``, ``*CACHE_S*``) outside
    the settings: every such lifetime is a setting, so operators find and change them in one place."""
    found = []
    for path in source_files():
        source = module_name(path)
        if source.startswith(("config.settings", "bench", "deploy", "devtools")):
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            for target in targets:
                if isinstance(target, ast.Name) and _LIFETIME.search(target.id):
                    found.append(f"{source}:{node.lineno} {target.id}")
    return found


def module_level_connects(packages: tuple[str, ...]) -> list[str]:
    """Signal receivers connected when a module is imported (``x.connect(...)`` at module
    level): receivers are wired in ``AppConfig.ready()``, in one place per app."""
    found = []
    for path in source_files():
        source = module_name(path)
        if source.split(".")[0] not in packages:
            continue
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "connect"):
                found.append(f"{source}:{node.lineno}")
    return found


def local_imports(packages: tuple[str, ...]) -> list[str]:
    """Imports inside functions of ``packages`` with no comment in the three lines above saying why."""
    found = []
    for path in source_files():
        source = module_name(path)
        if source.split(".")[0] not in packages or path.name == "apps.py":
            continue
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    above = lines[max(0, node.lineno - 4):node.lineno - 1]
                    if not any(line.strip().startswith("#") for line in above):
                        found.append(f"{source}:{node.lineno}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def package_graph() -> dict[str, set[str]]:
    """Top-level package -> the top-level packages it imports (itself excluded)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports():
        a, b = imp.source.split(".")[0], imp.target.split(".")[0]
        if a != b:
            graph[a].add(b)
    return graph


def mermaid() -> str:
    lines = ["flowchart TD"]
    for source, targets in sorted(package_graph().items()):
        lines += [f"    {source} --> {target}" for target in sorted(targets)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(mermaid() + "\n")
