# From knowledge/performance/07-activation-checkpointing-strategies.md line 159. Written by kb validate-snippets: edit the Markdown, not this file.
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

checkpointed_module = checkpoint_wrapper(module)
outputs = checkpointed_module(inputs)
