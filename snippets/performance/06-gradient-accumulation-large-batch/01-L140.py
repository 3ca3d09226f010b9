# From knowledge/performance/06-gradient-accumulation-large-batch.md line 140. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import LinearLR

# Setup added by kb (not in the torch.optim.lr_scheduler.LinearLR docs): a tiny model and random data, so the example runs.
model = nn.Linear(8, 4)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
loss_fn = nn.CrossEntropyLoss()
input = torch.randn(16, 8)
target = torch.randint(0, 4, (16,))
def train(*args):
    optimizer.zero_grad()
    loss_fn(model(input), target).backward()
    optimizer.step()
def validate(*args):
    with torch.no_grad():
        return loss_fn(model(input), target).item()

# The example, from the torch.optim.lr_scheduler.LinearLR docs:
# Assuming optimizer uses lr = 0.05 for all groups
# lr = 0.003687  if epoch == 0
# lr = 0.004875  if epoch == 1
# lr = 0.006062  if epoch == 2
# lr = 0.00725   if epoch == 3
# ...
# lr = 0.05      if epoch >= 40
scheduler = LinearLR(optimizer, start_factor=0.05, total_iters=40)
for epoch in range(100):
    train(...)
    validate(...)
    scheduler.step()
