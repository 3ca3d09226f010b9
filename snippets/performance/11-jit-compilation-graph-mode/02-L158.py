# From knowledge/performance/11-jit-compilation-graph-mode.md line 158. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

@torch.compile(options={"triton.cudagraphs": True}, fullgraph=True)
def foo(x):
    return torch.sin(x) + torch.cos(x)
