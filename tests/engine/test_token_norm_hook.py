"""TokenNormHook through a real (tiny) mmengine Runner, logging to a LocalVisBackend."""
import json
import uuid

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.runner import Runner

import dense_adapters.engine  # noqa: F401  (registers the hook)
from dense_adapters.errors import UserError
from dense_adapters.analysis.norms import token_norms
from dense_adapters.analysis.synthetic import plant_register_neuron
from dense_adapters.datasets.samples import photos
from dense_adapters.registry import MODELS

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


class ToyClassifier(BaseModel):
    """A frozen dense_adapters.RegViT backbone (with a planted outlier neuron) and a linear head."""

    def __init__(self) -> None:
        super().__init__(data_preprocessor=dict(type="ImgDataPreprocessor", mean=MEAN, std=STD))
        torch.manual_seed(0)
        self.backbone = MODELS.build(dict(type="dense_adapters.RegViT", arch="tiny", embed_dim=32, depth=3,
                                          num_heads=2, img_size=(56, 84), patch_size=14, frozen=True))
        self.head = torch.nn.Linear(32, 2)

    def init_weights(self) -> None:
        super().init_weights()  # the Runner calls this: plant after the ViT's own initialisation
        plant_register_neuron(self.backbone.vit, block=1, neuron=5, positions=[(0, 0), (2, 3)])

    def forward(self, inputs, data_samples=None, mode="tensor"):
        logits = self.head(self.backbone(inputs)[0].mean((2, 3)))  # [B, 2]
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, torch.tensor(data_samples))}
        return logits


def _data() -> list:
    from PIL import Image
    import numpy as np

    out = []
    for i, name in enumerate(["chelsea", "coffee", "rocket", "astronaut"]):
        im = np.asarray(Image.fromarray(photos()[name]).resize((84, 56)))
        out.append({"inputs": torch.from_numpy(im.copy()).permute(2, 0, 1), "data_samples": i % 2})
    return out


def _runner(tmp_path, hook: dict, model=None) -> Runner:
    return Runner(
        model=model or ToyClassifier(), work_dir=str(tmp_path), experiment_name=f"tnh_{uuid.uuid4().hex[:8]}",
        train_dataloader=dict(dataset=_data(), sampler=dict(type="InfiniteSampler", shuffle=False), batch_size=2,
                              collate_fn=dict(type="pseudo_collate"), num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=4), optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        custom_hooks=[hook], default_hooks=dict(checkpoint=None),
        visualizer=dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")]), default_scope="mmseg")


def test_hook_logs_scalars_to_local_backend(tmp_path):
    runner = _runner(tmp_path, dict(type="dense_adapters.TokenNormHook", interval=2, layers=[0, -1]))
    runner.train()
    files = list(tmp_path.glob("*/vis_data/scalars.json"))
    assert len(files) == 1
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    logged = {r["step"]: r for r in rows if "token_norm/b2_outlier_frac" in r}
    assert sorted(logged) == [2, 4]
    # the same numbers computed directly on the batch of iteration 2 (items 2 and 3, no shuffling)
    model = runner.model
    batch = model.data_preprocessor({"inputs": [d["inputs"] for d in _data()[2:]], "data_samples": [0, 1]})
    ref = token_norms(model.backbone.vit, batch["inputs"], [0, 2])
    r = logged[2]
    assert r["token_norm/b2_outlier_frac"] == pytest.approx(2 / 24)  # two planted cells of a 4 x 6 grid
    assert r["token_norm/b0_outlier_frac"] == 0
    assert r["token_norm/b2_patch_max"] == pytest.approx(ref[1].patches.max().item(), rel=1e-5)
    assert r["token_norm/b2_patch_max"] > 150
    assert r["token_norm/b0_patch_median"] == pytest.approx(ref[0].patches.median().item(), rel=1e-5)
    assert "token_norm/b2_cls" in r and "token_norm/b2_reg_max" not in r  # no registers in this model


def test_hook_refuses_a_model_without_the_backbone(tmp_path):
    runner = _runner(tmp_path, dict(type="dense_adapters.TokenNormHook", interval=1, backbone="encoder.vit"))
    with pytest.raises(UserError, match="has no 'encoder.vit'"):
        runner.train()
    runner = _runner(tmp_path, dict(type="dense_adapters.TokenNormHook", interval=1, layers=[7]))
    with pytest.raises(ValueError, match=r"layers \[7\] out of range for a ViT of depth 3"):
        runner.train()
    from dense_adapters.engine.token_norm_hook import TokenNormHook

    with pytest.raises(ValueError, match="interval must be >= 1"):
        TokenNormHook(interval=0)
