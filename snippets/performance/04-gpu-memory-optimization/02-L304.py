# From knowledge/performance/04-gpu-memory-optimization.md line 304. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

with torch.profiler.profile(
    activities=[
        torch.profiler.ProfilerActivity.CPU,
        torch.profiler.ProfilerActivity.CUDA,
    ]
) as p:
    code_to_profile()
print(p.key_averages().table(sort_by="self_cuda_time_total", row_limit=-1))
