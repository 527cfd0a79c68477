"""The command-line tools: one module per tool, each with ``parse_args(argv)``, ``run(args)`` and ``main(argv=None)``.

``main`` is the console script (``[project.scripts]`` in pyproject.toml, e.g. ``dense-adapters-train``) and what the
``tools/*.py`` shims call; ``python -m dense_adapters.cli.<tool>`` works too. ``run`` holds the tool's work and
raises :mod:`dense_adapters.errors` classes; :func:`dense_adapters.cli.core.run_cli` turns those into one
``error:`` line and exit code 2. Shared pieces: :mod:`.core` (``run_cli``, ``--cfg-options``), :mod:`.backbone`
(a RegViT from ``--arch`` or a config), :mod:`.runner` (config, safety nets, runner). docs/architecture.md says
how to add a tool. Nothing is imported here, so that ``--help`` of a light tool stays light.
"""
