# From knowledge/performance/02-cuda-stream-optimization.md line 189. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

s_cuda = torch.Stream(device='cuda')
e_cuda = s_cuda.record_event()
