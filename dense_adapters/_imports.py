"""Import every submodule of a package so that its registered classes exist (one line per package)."""
import importlib
import pkgutil


def import_submodules(name: str, path: list) -> None:
    """Import all modules below package ``name`` (its ``__path__`` is ``path``)."""
    for mod in pkgutil.walk_packages(path, prefix=f"{name}."):
        if ".samples" in mod.name:  # sample makers are imported on demand (tools/make_sample_data.py)
            continue
        importlib.import_module(mod.name)
