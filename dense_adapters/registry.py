"""Registries of the ``dense_adapters`` scope, children of mmseg's; configs name our classes with the prefix
(``type='dense_adapters.RegViT'``) and keep ``default_scope='mmseg'``."""
from . import compat

compat.apply()

from mmengine.registry import Registry  # noqa: E402
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS  # noqa: E402
from mmseg.registry import DATASETS as MMSEG_DATASETS  # noqa: E402
from mmseg.registry import HOOKS as MMSEG_HOOKS  # noqa: E402
from mmseg.registry import METRICS as MMSEG_METRICS  # noqa: E402
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS  # noqa: E402
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS  # noqa: E402
from mmseg.registry import MODELS as MMSEG_MODELS  # noqa: E402
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS  # noqa: E402

MODELS = Registry("model", parent=MMSEG_MODELS, scope="dense_adapters", locations=["dense_adapters.models"])
DATASETS = Registry("dataset", parent=MMSEG_DATASETS, scope="dense_adapters", locations=["dense_adapters.datasets"])
TRANSFORMS = Registry("transform", parent=MMSEG_TRANSFORMS, scope="dense_adapters",
                      locations=["dense_adapters.datasets"])
METRICS = Registry("metric", parent=MMSEG_METRICS, scope="dense_adapters", locations=["dense_adapters.evaluation"])
HOOKS = Registry("hook", parent=MMSEG_HOOKS, scope="dense_adapters", locations=["dense_adapters.engine"])
OPTIM_WRAPPERS = Registry("optim_wrapper", parent=MMSEG_OPTIM_WRAPPERS, scope="dense_adapters",
                          locations=["dense_adapters.engine"])
OPTIM_WRAPPER_CONSTRUCTORS = Registry("optimizer wrapper constructor", parent=MMSEG_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope="dense_adapters", locations=["dense_adapters.engine"])
DATA_SAMPLERS = Registry("data sampler", parent=MMSEG_DATA_SAMPLERS, scope="dense_adapters",
                         locations=["dense_adapters.datasets"])


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every registered class (mmseg's and ours) and, by default, make 'mmseg' the default scope."""
    from mmseg.utils import register_all_modules as register_mmseg

    register_mmseg(init_default_scope=init_default_scope)
    import dense_adapters.datasets  # noqa: F401
    import dense_adapters.evaluation  # noqa: F401
    import dense_adapters.models  # noqa: F401
    import dense_adapters.engine  # noqa: F401
