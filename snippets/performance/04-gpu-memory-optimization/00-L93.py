# From knowledge/performance/04-gpu-memory-optimization.md line 93. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch
from torch.utils.checkpoint import CheckpointPolicy
from torch.utils.checkpoint import create_selective_checkpoint_contexts

import functools

x = torch.rand(10, 10, requires_grad=True)
y = torch.rand(10, 10, requires_grad=True)

ops_to_save = [
   torch.ops.aten.mm.default,
]

def policy_fn(ctx, op, *args, **kwargs):
   if op in ops_to_save:
       return CheckpointPolicy.MUST_SAVE
   else:
       return CheckpointPolicy.PREFER_RECOMPUTE

context_fn = functools.partial(create_selective_checkpoint_contexts, policy_fn)

# or equivalently
context_fn = functools.partial(create_selective_checkpoint_contexts, ops_to_save)

def fn(x, y):
    return torch.sigmoid(torch.matmul(torch.matmul(x, y), y)) * y

out = torch.utils.checkpoint.checkpoint(
    fn, x, y,
    use_reentrant=False,
    context_fn=context_fn,
)
