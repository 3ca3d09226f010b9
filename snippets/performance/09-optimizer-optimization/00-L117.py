# From knowledge/performance/09-optimizer-optimization.md line 117. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch
import torch.nn as nn

# Setup added by kb (not in the torch.optim.SGD docs): a tiny model and random data, so the example runs.
model = nn.Linear(8, 4)
loss_fn = nn.CrossEntropyLoss()
input = torch.randn(16, 8)
target = torch.randint(0, 4, (16,))

# The example, from the torch.optim.SGD docs:
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
optimizer.zero_grad()
loss_fn(model(input), target).backward()
optimizer.step()
