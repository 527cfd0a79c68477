"""DINOv3's WarmupOneCycleLR as mmengine schedulers: refusals in one line, lag, resume from a state dict."""
import pytest
import torch

import dense_adapters.engine  # noqa: F401  (registers the schedulers)
from dense_adapters.engine.schedulers import warmup_one_cycle
from dense_adapters.errors import UserError
from dense_adapters.registry import PARAM_SCHEDULERS

KW = dict(total_steps=20, warmup_iters=5, final_div_factor=1000.0, by_epoch=False)


def _opt():
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3, betas=(0.9, 0.99))


@pytest.mark.parametrize("total, warmup", [(0, 0), (10, 10), (10, -1)])
def test_impossible_lengths_are_one_line(total, warmup):
    with pytest.raises(UserError, match="total_steps > warmup_iters >= 0"):
        PARAM_SCHEDULERS.build(dict(type="dense_adapters.WarmupOneCycleLR", optimizer=_opt(), total_steps=total,
                                    warmup_iters=warmup))


def test_lag_delays_the_schedule_and_a_state_dict_resumes_it():
    opt, lagged = _opt(), _opt()
    s = PARAM_SCHEDULERS.build(dict(type="dense_adapters.WarmupOneCycleLR", optimizer=opt, **KW))
    t = PARAM_SCHEDULERS.build(dict(type="dense_adapters.WarmupOneCycleLR", optimizer=lagged, lag=1, **KW))
    lrs, lagged_lrs = [], []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        lagged_lrs.append(lagged.param_groups[0]["lr"])
        s.step()
        t.step()
    assert lrs == [warmup_one_cycle(i, max_lr=1e-3, **{k: KW[k] for k in KW if k != "by_epoch"})[0]
                   for i in range(8)]
    assert lagged_lrs == [lrs[0]] + lrs[:-1]
    fresh = _opt()
    r = PARAM_SCHEDULERS.build(dict(type="dense_adapters.WarmupOneCycleLR", optimizer=fresh, **KW))
    r.load_state_dict(s.state_dict())
    r.step()
    s.step()
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
