# From knowledge/performance/09-optimizer-optimization.md line 180. Written by kb validate-snippets: edit the Markdown, not this file.
import torch
from torch.optim import swap_in_optimizer_params_and_state
from torch.fx.experimental.proxy_tensor import make_fx
from torch._subclasses import FakeTensorMode
from torch.utils import _pytree as pytree

fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
with fake_mode:
    fake_params = {
        n: fake_mode.from_tensor(p) for n, p in model.named_parameters()
    }
    fake_osd = pytree.tree_map_only(
        torch.Tensor, fake_mode.from_tensor, optimizer.state_dict()
    )

def step_fn(params, osd):
    with swap_in_optimizer_params_and_state(optimizer, params, osd):
        optimizer.step()
    return params, osd

gm = make_fx(step_fn)(fake_params, fake_osd)
