# From knowledge/performance/01-gpu-utilization-optimization.md line 100. Written by kb validate-snippets: edit the Markdown, not this file.
import torch
import torch.nn as nn
from torch.distributed.fsdp import MixedPrecision

model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
model[1] = FSDP(
    model[1],
    mixed_precision=MixedPrecision(param_dtype=torch.float16, cast_forward_inputs=True),
)
model = FSDP(
    model,
    mixed_precision=MixedPrecision(param_dtype=torch.bfloat16, cast_forward_inputs=True),
)
