# From knowledge/performance/02-cuda-stream-optimization.md line 78. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

with torch.Stream(device='cuda') as s_cuda:
    a = torch.randn(10, 5, device='cuda')
    b = torch.randn(5, 10, device='cuda')
    c = torch.mm(a, b)
