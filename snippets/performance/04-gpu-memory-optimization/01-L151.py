# From knowledge/performance/04-gpu-memory-optimization.md line 151. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch

import torch.nn as nn
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel as DDP
model = nn.Sequential(*[nn.Linear(2000, 2000).to(rank) for _ in range(20)])
ddp = DDP(model, device_ids=[rank])
opt = ZeroRedundancyOptimizer(
    ddp.parameters(),
    optimizer_class=torch.optim.Adam,
    lr=0.01
)
ddp(inputs).sum().backward()
opt.step()
