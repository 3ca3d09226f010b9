# From knowledge/performance/07-activation-checkpointing-strategies.md line 72. Written by kb validate-snippets: edit the Markdown, not this file.
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import offload_wrapper

offloaded_module = offload_wrapper(module)
outputs = checkpointed_module(inputs)
