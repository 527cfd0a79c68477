"""The import rules of docs/architecture.md, read from the source (every import statement, top-level or not)."""
import ast
import os
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "dense_adapters"
MM = ("mmengine", "mmcv", "mmseg", "mmdet")


def imports(path: Path) -> set:
    """Absolute names of the modules ``path`` imports (relative imports resolved inside dense_adapters)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1]  # the package a module (or an __init__) belongs to
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out |= {f"{mod}.{a.name}" for a in node.names} if not node.module else {mod}
            else:
                out.add(node.module)
    return out


def modules(sub: str):
    for root, _, files in os.walk(PKG / sub):
        for f in files:
            if f.endswith(".py"):
                yield Path(root) / f


def test_core_layers_are_framework_free():
    for sub in ("nn", "discovery", "analysis"):
        for path in modules(sub):
            bad = {m for m in imports(path) if m.split(".")[0] in MM or m.startswith("dense_adapters.registry")
                   or m.startswith(("dense_adapters.models", "dense_adapters.engine", "dense_adapters.cli"))}
            assert not bad, (path, bad)


def test_registry_imports_nothing_above_it():
    ours = {m for m in imports(PKG / "registry.py") if m.startswith("dense_adapters")}
    assert ours <= {"dense_adapters._mmcv_lite"}, ours
    assert {m for m in imports(PKG / "errors.py") if m != "__future__"} == set()


def test_only_the_cli_imports_the_cli():
    for path in PKG.rglob("*.py"):
        if "cli" in path.relative_to(PKG).parts:
            continue
        bad = {m for m in imports(path) if m.startswith("dense_adapters.cli")}
        assert not bad, (path, bad)
