# From knowledge/performance/13-training-loop-optimization.md line 163. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

torch.dot  # [D], [D] -> []
batched_dot = torch.func.vmap(torch.dot)  # [N, D], [N, D] -> [N]
x, y = torch.randn(2, 5), torch.randn(2, 5)
batched_dot(x, y)
