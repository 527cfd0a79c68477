"""Registries of the ``dense_adapters`` scope, children of mmseg's (and of mmengine's where mmseg has none).

Configs name our classes with the prefix (``type='dense_adapters.RegViT'``) and keep ``default_scope='mmseg'``.
This is the bottom of the mm layer: it imports mmengine and mmseg (after the mmcv-lite shim) and nothing of ours
above it; the subpackages import it to register their classes, and ``locations`` lets mmengine import them on
demand when a config names one of our types.
"""
from . import _mmcv_lite

_mmcv_lite.install()  # before anything imports mmseg

from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS  # noqa: E402
from mmengine.registry import Registry  # noqa: E402
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS  # noqa: E402
from mmseg.registry import DATASETS as MMSEG_DATASETS  # noqa: E402
from mmseg.registry import HOOKS as MMSEG_HOOKS  # noqa: E402
from mmseg.registry import LOOPS as MMSEG_LOOPS  # noqa: E402
from mmseg.registry import METRICS as MMSEG_METRICS  # noqa: E402
from mmseg.registry import MODELS as MMSEG_MODELS  # noqa: E402
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS  # noqa: E402
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS  # noqa: E402
from mmseg.registry import PARAM_SCHEDULERS as MMSEG_PARAM_SCHEDULERS  # noqa: E402
from mmseg.registry import RUNNERS as MMSEG_RUNNERS  # noqa: E402
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS  # noqa: E402
from mmseg.registry import WEIGHT_INITIALIZERS as MMSEG_WEIGHT_INITIALIZERS  # noqa: E402

SCOPE = "dense_adapters"

MODELS = Registry("model", parent=MMSEG_MODELS, scope=SCOPE, locations=["dense_adapters.models"])
DATASETS = Registry("dataset", parent=MMSEG_DATASETS, scope=SCOPE, locations=["dense_adapters.datasets"])
TRANSFORMS = Registry("transform", parent=MMSEG_TRANSFORMS, scope=SCOPE, locations=["dense_adapters.datasets"])
METRICS = Registry("metric", parent=MMSEG_METRICS, scope=SCOPE, locations=["dense_adapters.evaluation"])
HOOKS = Registry("hook", parent=MMSEG_HOOKS, scope=SCOPE, locations=["dense_adapters.engine"])
OPTIM_WRAPPERS = Registry("optim_wrapper", parent=MMSEG_OPTIM_WRAPPERS, scope=SCOPE,
                          locations=["dense_adapters.engine"])
OPTIM_WRAPPER_CONSTRUCTORS = Registry("optimizer wrapper constructor", parent=MMSEG_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope=SCOPE, locations=["dense_adapters.engine"])
DATA_SAMPLERS = Registry("data sampler", parent=MMSEG_DATA_SAMPLERS, scope=SCOPE, locations=["dense_adapters.datasets"])
PARAM_SCHEDULERS = Registry("parameter scheduler", parent=MMSEG_PARAM_SCHEDULERS, scope=SCOPE,
                            locations=["dense_adapters.engine"])
LOOPS = Registry("loop", parent=MMSEG_LOOPS, scope=SCOPE, locations=["dense_adapters.engine"])
RUNNERS = Registry("runner", parent=MMSEG_RUNNERS, scope=SCOPE, locations=["dense_adapters.engine"])
# init_cfg=dict(type='Pretrained', _scope_='dense_adapters'): the safe loader (engine/safe_load.py)
WEIGHT_INITIALIZERS = Registry("weight initializer", parent=MMSEG_WEIGHT_INITIALIZERS, scope=SCOPE,
                               locations=["dense_adapters.engine"])
# functions named by configs, e.g. FSDPStrategy's auto_wrap_policy / activation-checkpointing check_fn
FUNCTIONS = Registry("function", parent=MMENGINE_FUNCTIONS, scope=SCOPE, locations=["dense_adapters.engine"])

