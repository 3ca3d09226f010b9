# From knowledge/performance/09-optimizer-optimization.md line 200. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import CosineAnnealingLR

# Setup added by kb (not in the torch.optim.lr_scheduler.CosineAnnealingLR docs): a tiny model and random data, so the example runs.
model = nn.Linear(8, 4)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
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

# The example, from the torch.optim.lr_scheduler.CosineAnnealingLR docs:
num_epochs = 100
scheduler = CosineAnnealingLR(optimizer, T_max=num_epochs)
for epoch in range(num_epochs):
    train(...)
    validate(...)
    scheduler.step()
