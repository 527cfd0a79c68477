"""mmengine's checkpoint prefixes, read by the one safe reader (``dense_adapters.nn.convert.read_checkpoint``).

mmengine's ``CheckpointLoader`` reads ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` checkpoints through
``torch.hub`` with ``weights_only=False``: a crafted pickle behind such a name runs code. Here each prefix is only
*resolved* (to the URL or file mmengine's own tables name), and the reader downloads it into its cache keyed by the
full source and loads it with ``weights_only=True`` (``--trust-pickle`` to allow code):

* ``torchvision://NAME`` (and the deprecated ``modelzoo://``): torchvision's weight URLs;
* ``open-mmlab://NAME`` / ``openmmlab://NAME``: mmengine's ``openmmlab.json`` plus ``$MMENGINE_HOME/open_mmlab.json``
  (deprecated names followed); a relative entry is a file under mmengine's home;
* ``mmcls://NAME``: mmengine's ``mmcls.json``; the backbone part is taken as mmengine does;
* any prefix with an mmengine file backend (``s3://``, ``petrel://``, ``cluster:s3://``, or one a user registers):
  the bytes are fetched with that backend into the reader's cache, then read like a local file;
* ``pavi://``: refused in one line (download the file and give its path).

Importing this module registers the resolvers with the core reader (``register_source``); ``dense_adapters.engine``
imports it, so every tool and runner has them.
"""
from __future__ import annotations

import os
import os.path as osp

from mmengine.runner import checkpoint as mm_checkpoint

from ..errors import CheckpointError
from ..fileio import atomic_write
from ..nn.convert.reader import cached_path, register_source


def _name(source: str) -> str:
    return source.split("://", 1)[1]


def _pick(source: str, table: dict, what: str) -> str:
    name = _name(source)
    if name not in table:
        close = sorted(k for k in table if name.split("_")[0] in k)[:4] or sorted(table)[:4]
        raise CheckpointError(f"cannot read {source}: {what} has no checkpoint named {name!r} (e.g. "
                              f"{', '.join(close)}): check the name, or give a path or URL")
    return table[name]


def torchvision_source(source: str) -> str:
    return _pick(source, mm_checkpoint.get_torchvision_models(), "torchvision")


def openmmlab_source(source: str) -> str:
    name = _name(source)
    name = mm_checkpoint.get_deprecated_model_names().get(name, name)
    url = _pick(f"open-mmlab://{name}", mm_checkpoint.get_external_models(), "mmengine's open-mmlab table")
    if url.startswith(("http://", "https://")):
        return url
    return osp.join(mm_checkpoint._get_mmengine_home(), url)  # a file mmengine keeps under its home


def mmcls_source(source: str):
    return _pick(source, mm_checkpoint.get_mmcls_models(), "mmengine's mmcls table"), \
        mm_checkpoint._process_mmcls_checkpoint


def pavi_source(source: str):
    raise CheckpointError(f"cannot read {source}: pavi:// needs the pavi client and is not read by the safe loader: "
                          "download the checkpoint and give its path")


def backend_source(source: str) -> str:
    """Fetch ``source`` with the mmengine file backend of its prefix into the reader's cache; the local path."""
    from mmengine.fileio import get_file_backend
    from mmengine.fileio.backends.registry_utils import prefix_to_backends

    prefix = source.split("://", 1)[0].split(":")[-1]
    if prefix not in prefix_to_backends:
        raise CheckpointError(f"cannot read {source}: no reader for {prefix}:// (readable: local files, Hugging Face "
                              "folders, http(s)://, file://, torchvision://, open-mmlab://, mmcls:// and the prefixes "
                              f"of mmengine's file backends: {', '.join(sorted(prefix_to_backends))})")
    local = cached_path(source)
    if osp.isfile(local):
        return local
    try:
        data = get_file_backend(source).get(source)
    except ImportError as e:
        raise CheckpointError(f"cannot read {source}: {' '.join(str(e).split())} (mmengine's {prefix}:// backend "
                              "needs it): install it, or download the checkpoint and give its path") from None
    except Exception as e:  # noqa: BLE001 - every backend has its own errors (missing object, network, auth)
        raise CheckpointError(f"cannot read {source} ({type(e).__name__}: {' '.join(str(e).split())[:200]}): check "
                              "the path and your access, or download the checkpoint and give its path") from None
    os.makedirs(osp.dirname(local), exist_ok=True)
    atomic_write(local, data)
    return local


register_source(r"^(torchvision|modelzoo)://", torchvision_source)
register_source(r"^(open-mmlab|openmmlab)://", openmmlab_source)
register_source(r"^mmcls://", mmcls_source)
register_source(r"^pavi://", pavi_source)
register_source(r"^(?:[\w.+-]+:)?[A-Za-z][\w.+-]*://", backend_source)  # last: any other prefix
