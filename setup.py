"""Build hook only: metadata, dependencies and console scripts are in pyproject.toml.

A wheel carries the repository's ``configs/`` and ``benchmarks/`` (one source of truth, where a clone's users find
them) under ``dense_adapters/.mim/`` — OpenMMLab's place for a package's configs — so an installed package resolves
``dense_adapters::NAME.py`` and runs the benchmark suites without a clone. They are copied into the build folder
only, never into the source tree. An editable install copies nothing: the package then finds the checkout's own
``configs/`` next to it (``dense_adapters.cli.configs.config_dir``).
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
MIM_FOLDERS = ("configs", "benchmarks")  # repository folders copied to dense_adapters/.mim/<folder>
# mmengine's own `pkg::` lookup reads <package>/.mim/model-index.yml before it looks for a base config; an empty
# index says "no model zoo entries" and lets it fall through to .mim/configs/<path>.
MODEL_INDEX = "# dense_adapters ships configs, no model-zoo metafiles (read by mmengine's `pkg::` lookup)\nImport: []\n"


class BuildPyWithMim(build_py):
    """build_py that also copies the repository's configs and benchmark cases into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the package is the source tree: cli.configs finds ../configs itself
            return
        mim = os.path.join(self.build_lib, "dense_adapters", ".mim")
        if os.path.isdir(mim):  # an earlier build's copy may hold files deleted since
            shutil.rmtree(mim)
        for folder in MIM_FOLDERS:
            src = os.path.join(HERE, folder)
            if not os.path.isdir(src):
                raise FileNotFoundError(f"{src} is missing: build from a checkout or an sdist that includes it")
            shutil.copytree(src, os.path.join(mim, folder), ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
        with open(os.path.join(mim, "model-index.yml"), "w") as f:
            f.write(MODEL_INDEX)


setup(cmdclass={"build_py": BuildPyWithMim})
