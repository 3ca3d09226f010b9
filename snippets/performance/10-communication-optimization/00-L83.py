# From knowledge/performance/10-communication-optimization.md line 83. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import fp16_compress_hook

ddp_model.register_comm_hook(process_group, fp16_compress_hook)
