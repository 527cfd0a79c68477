"""On resume, the optimizer settings of the config win over the checkpoint's, and the run says so.

mmengine's resume loads the optimizer's param groups and the schedulers' state from the checkpoint, so an lr (or
weight decay, momentum, ...) changed in the config or with ``--cfg-options`` is silently ignored: the advice
"lower the learning rate and --resume" could not work. :func:`apply_config_hyperparameters` runs after the
resume (``SafeLoadRunner.resume``):

* a scheduled value (``lr``, ``momentum``, ...) whose config start value differs from the checkpoint's gets the
  config's start value, and its schedulers are replayed from the start to the resumed step: the value is then what
  an uninterrupted run with the new setting would have at this iteration;
* an unscheduled one (``weight_decay``, ``betas``, ``eps``, ...) takes the config's value;
* each change is logged; nothing changes (and the resume stays exact) when the config equals the checkpoint.
"""
from __future__ import annotations

import math
from typing import Optional

from mmengine.logging import print_log

SKIP = ("params", "param_names")


def _wrappers(optim_wrapper) -> dict:
    inner = getattr(optim_wrapper, "optim_wrappers", None)
    if isinstance(inner, dict):
        return dict(inner)
    return {"": optim_wrapper} if hasattr(optim_wrapper, "optimizer") else {}


def snapshot(optim_wrapper) -> Optional[dict]:
    """The param groups' settings (without the parameters) of a built optim wrapper, per wrapper name."""
    wrappers = _wrappers(optim_wrapper)
    if not wrappers:
        return None
    return {name: [{k: v for k, v in g.items() if k not in SKIP} for g in w.optimizer.param_groups]
            for name, w in wrappers.items()}


def _schedulers(param_schedulers, name: str) -> list:
    if param_schedulers is None:
        return []
    if isinstance(param_schedulers, dict):
        return list(param_schedulers.get(name or "", []) or [])
    return list(param_schedulers)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def _replay(groups: list, schedulers: list, param: str, start: list) -> None:
    """Set ``param`` of every group to ``start`` and step its schedulers again to where they were."""
    counts = [s._global_step for s in schedulers]
    for g, v in zip(groups, start):
        g[f"initial_{param}"] = v
        g[param] = v
    for s in schedulers:  # as built: state of a fresh scheduler, then its construction-time step
        s.base_values = list(start)
        s.last_step, s._global_step = -1, -1
        s.step()
    for t in range(max(counts, default=0)):
        for s, n in zip(schedulers, counts):
            if t < n:
                s.step()


def apply_config_hyperparameters(runner, fresh: Optional[dict]) -> list[str]:
    """After a resume: give the optimizer the config's settings where they differ from the checkpoint's (see the
    module doc); returns the log lines."""
    if not fresh:
        return []
    notes = []
    for name, w in _wrappers(runner.optim_wrapper).items():
        groups = w.optimizer.param_groups
        want = fresh.get(name)
        if want is None or len(want) != len(groups):
            continue
        scheds = _schedulers(runner.param_schedulers, name)
        scheduled = {s.param_name for s in scheds}
        label = f"{name} " if name else ""
        for param in sorted(scheduled):
            key = f"initial_{param}"
            start = [g.get(key, g.get(param)) for g in want]
            old = [g.get(key, g.get(param)) for g in groups]
            if all(_same(a, b) for a, b in zip(start, old)):
                continue
            _replay(groups, [s for s in scheds if s.param_name == param], param, start)
            notes.append(f"{label}{param}: the config's start value {_show(start)} replaces the checkpoint's "
                         f"{_show(old)}; the schedule continues at step {runner.iter}: {param} now "
                         f"{_show([g[param] for g in groups])}")
        for key in sorted(set().union(*[set(g) for g in want])):
            if key in scheduled or key.startswith("initial_") or key in SKIP:
                continue
            new = [g.get(key) for g in want]
            old = [g.get(key) for g in groups]
            if all(_same(a, b) for a, b in zip(new, old)):
                continue
            for g, v in zip(groups, new):
                g[key] = v
            notes.append(f"{label}{key}: the config's {_show(new)} replaces the checkpoint's {_show(old)}")
    for line in notes:
        print_log(f"resume: optimizer {line}", logger="current")
    return notes


def _show(values: list) -> str:
    uniq = []
    for v in values:
        if not any(_same(v, u) for u in uniq):
            uniq.append(v)
    fmt = [f"{v:.6g}" if isinstance(v, float) else repr(v) for v in uniq]
    return fmt[0] if len(fmt) == 1 else "[" + ", ".join(fmt) + "]"
