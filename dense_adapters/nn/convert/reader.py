"""The one checkpoint reader: local files, Hugging Face folders and URLs, never executing code from a file.

Every path that reads weights goes through :func:`read_checkpoint` (or its thin form :func:`load_file`): the RegViT
converters here and the mm layer's checkpoint loading. What it guarantees:

- a file is read by its *content*, not its name: a zip or legacy torch pickle goes through
  ``torch.load(weights_only=True)``, a safetensors file through safetensors; a pickle that needs arbitrary code raises
  :class:`~dense_adapters.errors.UntrustedCheckpoint` unless ``trust_pickle=True``;
- missing, empty, truncated, damaged or non-checkpoint files raise :class:`~dense_adapters.errors.CheckpointError`
  with one line that names the file and what to do;
- a folder is read as a Hugging Face model folder: ``config.json`` + ``model.safetensors`` (or a sharded
  ``model.safetensors.index.json``, or ``pytorch_model.bin[.index.json]``);
- a URL (``http(s)://``, ``file://``) is downloaded once into a cache keyed by a hash of the *full* URL (two URLs that
  end in the same file name, e.g. every Hugging Face ``model.safetensors``, never share a cache entry); a cached file
  found truncated or damaged is removed, so the next read downloads it again;
- other sources (mmengine's ``torchvision://``, ``open-mmlab://``, ``mmcls://``, ``s3://``, ...) are resolved by the
  functions registered with :func:`register_source` (the mm layer registers mmengine's: ``dense_adapters.engine.
  sources``) into a URL or a local file, then read as above; an unknown ``scheme://`` is one line;
- a checkpoint that records a content checksum (``meta['content_sha256']``, written by the training tools) is
  checked against it (:mod:`.integrity`): bytes damaged inside a zip whose directory is intact are caught.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import torch

from ...errors import CheckpointError, UntrustedCheckpoint
from .integrity import verify_digest

URL_SCHEMES = ("http://", "https://", "file://")
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json")
DOWNLOAD_TIMEOUT_S = 60.0
# plain containers that torch.load(weights_only=True) may rebuild besides tensors: DeiT-style training scripts (DeiT,
# SkipAt) save their command line as an argparse.Namespace beside the weights (no code runs: its __dict__ is set)
SAFE_GLOBALS = (argparse.Namespace,)


@dataclass
class Checkpoint:
    """A checkpoint as read from disk: the raw object plus what was found beside it.

    ``obj`` is what ``torch.load``/safetensors returned (for a Hugging Face folder: ``{'state_dict': weights}``);
    ``hf_config`` the folder's ``config.json`` (None otherwise); ``path`` the local file or folder that was read;
    ``source`` what the caller gave (a path or URL).
    """

    obj: Any
    source: str
    path: str
    hf_config: Optional[dict] = None
    files: list = field(default_factory=list)


def is_url(path: str) -> bool:
    return str(path).startswith(URL_SCHEMES)


# ------------------------------------------------------------------------------------------------- sources
Resolver = Callable[[str], Union[str, tuple]]
SOURCE_RESOLVERS: list = []  # (compiled pattern, resolver), tried in order
_SCHEME = re.compile(r"^(?:[\w.+-]+:)?[A-Za-z][\w.+-]*://")


def register_source(pattern: str, resolve: Resolver) -> None:
    """Read sources matching ``pattern`` (a regex, matched at the start) through ``resolve(source)``, which returns
    a URL or a local file (or ``(that, postprocess)``, ``postprocess(obj) -> obj`` applied after reading).
    Registering the same pattern again replaces its resolver."""
    rx = re.compile(pattern)
    SOURCE_RESOLVERS[:] = [(p, f) for p, f in SOURCE_RESOLVERS if p.pattern != rx.pattern]
    SOURCE_RESOLVERS.append((rx, resolve))


def resolve_source(source: str) -> tuple[str, list]:
    """``source`` resolved to a URL or local path by the registered resolvers, and the postprocessing to apply."""
    post: list = []
    for _ in range(4):  # a resolver may return another prefixed source
        if is_url(source) or not _SCHEME.match(source):
            return source, post
        for rx, fn in SOURCE_RESOLVERS:
            if rx.match(source):
                out = fn(source)
                if isinstance(out, tuple):
                    out, fn_post = out
                    if fn_post is not None:
                        post.append(fn_post)
                source = str(out)
                break
        else:
            scheme = _SCHEME.match(source).group(0)
            raise CheckpointError(f"cannot read {source}: no reader for {scheme} (readable: local files, Hugging Face "
                                  "folders, http(s):// and file:// URLs, and mmengine's prefixes once "
                                  "dense_adapters.engine is imported, as every tool does)")
    return source, post


def fetch_checkpoint(source: str) -> str:
    """The local file (or folder) of ``source``: resolved (:func:`resolve_source`) and downloaded if a URL.
    Nothing is unpickled; a postprocessing step (e.g. ``mmcls://``) is not applied."""
    target, _ = resolve_source(str(source))
    return download(target) if is_url(target) else os.path.expanduser(target)


def cache_dir() -> str:
    """Where downloaded checkpoints live: ``<torch hub dir>/checkpoints/dense_adapters``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", "dense_adapters")


def cached_path(url: str) -> str:
    """The cache file of ``url``: ``<cache>/<sha256(url)[:20]>/<file name>`` (the name only for readability)."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:20]
    name = os.path.basename(urllib.parse.urlparse(url).path) or "checkpoint"
    return os.path.join(cache_dir(), digest, name)


def download(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> str:
    """Download ``url`` once (atomically: a partial file is never taken for a finished one); return the local path."""
    local = cached_path(url)
    if os.path.isfile(local):
        return local
    os.makedirs(os.path.dirname(local), exist_ok=True)
    part = f"{local}.part-{os.getpid()}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, local)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise CheckpointError(f"cannot download checkpoint {url}: {reason}: check the URL and the network, or "
                              "download it yourself and pass the local file") from None
    finally:
        if os.path.exists(part):
            os.remove(part)
    return local


# ------------------------------------------------------------------------------------------------- files
def _sniff(path: str) -> str:
    """'zip' (torch >= 1.6), 'pickle' (legacy torch.save), 'safetensors', 'empty' or 'unknown', from the bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "empty"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) >= 9:  # before the pickle test: a header length may start with byte 0x80
        n = int.from_bytes(head[:8], "little")
        if 0 < n < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def _damaged(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path} {what}: the file is truncated or damaged (re-download or re-save it)")


def _torch_load(path: str, map_location, trust_pickle: bool) -> Any:
    try:
        # a file object, not the name: torch.load would pick safetensors by the suffix
        with open(path, "rb") as f, torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(f, map_location=map_location, weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:
        msg = str(e)
        # "GLOBAL m.f was not an allowed global", or "... whose module m is blocked" (os, subprocess, ...)
        found = re.search(r"GLOBAL (\S+) (?:was not an allowed global|whose module \S+ is blocked)", msg)
        if not trust_pickle and (found or "Unsupported global" in msg):
            what = f" (it holds {found.group(1)})" if found else ""
            raise UntrustedCheckpoint(
                f"{path} needs arbitrary code to unpickle{what}, so it was refused: pass trust_pickle=True / "
                "--trust-pickle only if you trust its source, or re-save its state_dict") from None
        raise CheckpointError(f"{path} is not a torch checkpoint that can be read ({' '.join(msg.split())[-120:]})"
                              ": give a .pth/.pt/.bin saved by torch.save, or a .safetensors file") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        text = str(e).lower()
        if isinstance(e, RuntimeError) and not any(w in text for w in ("pytorchstreamreader", "zip", "magic number",
                                                                          "corrupt")):
            raise
        raise _damaged(path, f"cannot be read as a torch checkpoint ({type(e).__name__})") from None


def _safetensors_load(path: str, map_location) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file as load_safetensors

    device = map_location if isinstance(map_location, str) else "cpu"
    try:
        return load_safetensors(path, device=device)
    except (SafetensorError, OSError, ValueError) as e:
        raise _damaged(path, f"cannot be read as safetensors ({' '.join(str(e).split())[:120]})") from None


def _file_kind(path: str) -> str:
    """What the bytes of ``path`` are ('zip', 'pickle', 'safetensors'); one line for anything unreadable."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}: give an existing file, a Hugging Face model folder "
                              "or an http(s):// / file:// URL")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} is not a file")
    kind = _sniff(path)
    if kind == "empty":
        raise CheckpointError(f"{path} is empty (0 bytes): the save or download was interrupted; re-create it")
    if kind == "unknown":
        raise CheckpointError(f"{path} is not a checkpoint (neither a torch zip/pickle nor safetensors): give a "
                              ".pth/.pt/.bin from torch.save, a .safetensors file or a Hugging Face model folder")
    return kind


def _load_one_file(path: str, map_location, trust_pickle: bool) -> Any:
    kind = _file_kind(path)
    if kind == "safetensors":
        return _safetensors_load(path, map_location)
    if kind in ("zip", "pickle"):
        return _torch_load(path, map_location, trust_pickle)
    raise CheckpointError(f"{path} is not a checkpoint (neither a torch zip/pickle nor safetensors): give a .pth/.pt/"
                          ".bin from torch.save, a .safetensors file or a Hugging Face model folder")


# ----------------------------------------------------------------------------------------------- folders
def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            out = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if not isinstance(out, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return out


def _load_hf_folder(folder: str, map_location, trust_pickle: bool) -> Checkpoint:
    config = os.path.join(folder, "config.json")
    hf_config = _read_json(config) if os.path.isfile(config) else None
    weights = next((os.path.join(folder, f) for f in HF_WEIGHT_FILES if os.path.isfile(os.path.join(folder, f))), None)
    if weights is None:
        raise CheckpointError(f"{folder} is a folder without model weights: expected one of {', '.join(HF_WEIGHT_FILES)}"
                              " (a Hugging Face model folder), or give the checkpoint file itself")
    files = [weights]
    if weights.endswith(".index.json"):
        index = _read_json(weights)
        shards = sorted(set((index.get("weight_map") or {}).values()))
        if not shards:
            raise CheckpointError(f"{weights} has no weight_map: the sharded checkpoint index is damaged")
        sd: dict = {}
        files = []
        for shard in shards:
            p = os.path.join(folder, shard)
            if not os.path.isfile(p):
                raise CheckpointError(f"shard {shard} listed in {weights} is missing: download the whole folder")
            part = _load_one_file(p, map_location, trust_pickle)
            sd.update(part.get("state_dict", part) if isinstance(part, dict) else {})
            files.append(p)
        obj: Any = sd
    else:
        obj = _load_one_file(weights, map_location, trust_pickle)
    if isinstance(obj, dict) and "state_dict" not in obj:
        obj = {"state_dict": obj}
    return Checkpoint(obj=obj, source=folder, path=folder, hf_config=hf_config, files=files)


# --------------------------------------------------------------------------------------------------- API
def read_checkpoint(path: str, map_location="cpu", trust_pickle: bool = False) -> Checkpoint:
    """Read a checkpoint file, Hugging Face folder or URL into a :class:`Checkpoint` (see the module docstring)."""
    source = str(path)
    target, post = resolve_source(source)
    local = download(target) if is_url(target) else os.path.expanduser(target)
    if os.path.isdir(local):
        ckpt = _load_hf_folder(local, map_location, trust_pickle)
        ckpt.source = source
        return ckpt
    try:
        obj = _load_one_file(local, map_location, trust_pickle)
        verify_digest(obj, local)
    except CheckpointError as e:
        if local == source:
            raise
        text = str(e).replace(local, source)
        if not isinstance(e, UntrustedCheckpoint) and local.startswith(cache_dir()) and os.path.isfile(local):
            os.remove(local)  # a damaged download: fetched again next time
            text += f" (the damaged cached copy {local} was removed: the next read downloads it again)"
        raise type(e)(text) from None
    for fn in post:
        obj = fn(obj)
    return Checkpoint(obj=obj, source=source, path=local, files=[local])


def probe_checkpoint(path: str) -> str:
    """Cheap checks of a checkpoint before a long setup (nothing is unpickled): resolved and downloaded, exists,
    not empty, a torch zip / pickle / safetensors file (a torch zip with its directory, i.e. not truncated), or a
    Hugging Face folder with weights. Returns the local path; the same one-line errors as :func:`read_checkpoint`.
    Damage inside a file is found only when it is read."""
    source = str(path)
    local = fetch_checkpoint(source)
    try:
        if os.path.isdir(local):
            if not any(os.path.isfile(os.path.join(local, f)) for f in HF_WEIGHT_FILES):
                raise CheckpointError(f"{local} is a folder without model weights: expected one of "
                                      f"{', '.join(HF_WEIGHT_FILES)} (a Hugging Face model folder), or give the "
                                      "checkpoint file itself")
            return local
        kind = _file_kind(local)
        if kind == "zip":
            try:
                with zipfile.ZipFile(local) as z:
                    z.namelist()
            except (zipfile.BadZipFile, OSError, ValueError) as e:
                raise _damaged(local, f"cannot be read as a torch checkpoint ({type(e).__name__})") from None
    except CheckpointError as e:
        if local == source:
            raise
        raise type(e)(str(e).replace(local, source)) from None
    return local


def load_file(path: str, map_location="cpu", trust_pickle: bool = False) -> Any:
    """The object stored in a checkpoint (file, Hugging Face folder -> ``{'state_dict': ...}``, or URL).

    ``torch.load(weights_only=True)`` or safetensors, chosen by the file's bytes; ``trust_pickle=True`` allows
    arbitrary pickled objects (only for files from a source you trust). Raises
    :class:`~dense_adapters.errors.CheckpointError` / :class:`~dense_adapters.errors.UntrustedCheckpoint`.
    """
    return read_checkpoint(path, map_location=map_location, trust_pickle=trust_pickle).obj
