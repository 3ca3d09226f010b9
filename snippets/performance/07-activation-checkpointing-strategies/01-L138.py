# From knowledge/performance/07-activation-checkpointing-strategies.md line 138. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch

with torch.autograd.graph.region_activation_memory_budget(0.0):
    x = layer(x)  # recompute this region's activations in backward
