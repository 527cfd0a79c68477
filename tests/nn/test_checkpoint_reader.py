"""The one checkpoint reader: content sniffing, one-line errors for bad files, HF folders, a URL cache by full URL."""
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from dense_adapters.errors import CheckpointError, UntrustedCheckpoint
from dense_adapters.nn.convert import cached_path, load_file, read_checkpoint


class Payload:  # a pickled object: loading it needs code execution
    pass


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_bad_files_fail_in_one_line(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.arange(1000.0)}, good)
    data = good.read_bytes()
    cases = {
        "empty.pth": (b"", "is empty \\(0 bytes\\)"),
        "trunc.pth": (data[: len(data) // 2], "truncated or damaged"),
        "damaged.pth": (data[:200] + b"\xff" * 300 + data[500:], "truncated or damaged"),
        "text.pth": (b"not a checkpoint at all\n" * 20, "is not a checkpoint"),
        "weights.safetensors": (b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": [1, 2, ", "cannot be read as safetensors"),
    }
    for name, (content, pattern) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=pattern) as e:
            load_file(str(tmp_path / name))
        assert name in _one_line(e)
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.zeros(100)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="truncated or damaged") as e:
        load_file(str(legacy))
    _one_line(e)
    import pickle

    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match="not a torch checkpoint") as e:
        load_file(str(tmp_path / "plain.pkl"))
    _one_line(e)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_file(str(tmp_path / "nope.pth"))


def test_content_not_name_decides_and_pickled_code_is_refused(tmp_path):
    # a torch zip named .safetensors is read as what it is, with weights_only
    torch.save({"w": torch.ones(2)}, tmp_path / "misnamed.safetensors")
    assert torch.equal(load_file(str(tmp_path / "misnamed.safetensors"))["w"], torch.ones(2))
    torch.save({"w": torch.zeros(1), "obj": Payload()}, tmp_path / "evil.safetensors")
    with pytest.raises(UntrustedCheckpoint, match="needs arbitrary code") as e:
        load_file(str(tmp_path / "evil.safetensors"))
    _one_line(e)
    # a safetensors file named .pth
    save_file({"w": torch.full((3,), 2.0)}, str(tmp_path / "st.pth"))
    assert torch.equal(load_file(str(tmp_path / "st.pth"))["w"], torch.full((3,), 2.0))


def test_hugging_face_folders(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "dinov2", "hidden_size": 8}))
    save_file({"a": torch.ones(2)}, str(folder / "model.safetensors"))
    ck = read_checkpoint(str(folder))
    assert ck.hf_config["model_type"] == "dinov2" and torch.equal(ck.obj["state_dict"]["a"], torch.ones(2))
    # sharded
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    save_file({"a": torch.ones(2)}, str(sharded / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(2)}, str(sharded / "model-00002-of-00002.safetensors"))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    assert sorted(load_file(str(sharded))["state_dict"]) == ["a", "b"]
    os.remove(sharded / "model-00002-of-00002.safetensors")
    with pytest.raises(CheckpointError, match="shard model-00002-of-00002.safetensors .* is missing") as e:
        load_file(str(sharded))
    _one_line(e)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="folder without model weights"):
        load_file(str(empty))


def test_url_cache_is_keyed_by_the_full_url(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    for sub, value in (("a", 1.0), ("b", 2.0)):  # two URLs ending in the same file name
        (tmp_path / sub).mkdir()
        torch.save({"w": torch.full((2,), value)}, tmp_path / sub / "model.pth")
    url_a, url_b = ((tmp_path / s / "model.pth").as_uri() for s in ("a", "b"))
    assert float(load_file(url_a)["w"][0]) == 1.0
    assert float(load_file(url_b)["w"][0]) == 2.0
    assert cached_path(url_a) != cached_path(url_b) and os.path.isfile(cached_path(url_b))
    os.remove(tmp_path / "a" / "model.pth")  # downloaded once: the cache answers now
    assert float(load_file(url_a)["w"][0]) == 1.0
    with pytest.raises(CheckpointError, match="cannot download checkpoint") as e:
        load_file((tmp_path / "missing" / "x.pth").as_uri())
    _one_line(e)
