# From knowledge/performance/02-cuda-stream-optimization.md line 145. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch

s1_cuda = torch.Stream(device='cuda')
s2_cuda = torch.Stream(device='cuda')
e_cuda = s1_cuda.record()
e_cuda.wait(s2)
