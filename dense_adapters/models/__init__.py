"""Registered wrappers (mmseg/mmengine) around the plain-PyTorch core."""
from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
