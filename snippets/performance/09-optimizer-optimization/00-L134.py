# From knowledge/performance/09-optimizer-optimization.md line 134. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
optimizer.zero_grad()
loss_fn(model(input), target).backward()
optimizer.step()
