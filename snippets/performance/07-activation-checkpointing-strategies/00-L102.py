# From knowledge/performance/07-activation-checkpointing-strategies.md line 102. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch
import functools
from torch.utils.checkpoint import create_selective_checkpoint_contexts

def policy_fn(ctx, op, *args, **kwargs):
   print(ctx.op_output)

context_fn = functools.partial(create_selective_checkpoint_contexts, policy_fn)

out = torch.utils.checkpoint.checkpoint(
    fn, x, y,
    use_reentrant=False,
    context_fn=context_fn,
)
