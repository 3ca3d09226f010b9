# From knowledge/performance/03-mixed-precision-training-advanced.md line 65. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch
import torch.nn as nn
from torch import GradScaler

# Setup added by kb (not in the torch.GradScaler docs): a tiny model and random data on cuda, so the example runs.
epochs = range(2)
data = [(torch.randn(16, 8, device="cuda"), torch.randint(0, 4, (16,), device="cuda")) for _ in range(4)]
model = nn.Linear(8, 4, device="cuda")
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()

# The example, from the torch.GradScaler docs:
# Creates a GradScaler once at the beginning of training.
scaler = GradScaler()

for epoch in epochs:
    for input, target in data:
        optimizer.zero_grad()
        output = model(input)
        loss = loss_fn(output, target)

        # Scales loss.  Calls backward() on scaled loss to create scaled gradients.
        scaler.scale(loss).backward()

        # scaler.step() first unscales gradients of the optimizer's params.
        # If gradients don't contain infs/NaNs, optimizer.step() is then called,
        # otherwise, optimizer.step() is skipped.
        scaler.step(optimizer)

        # Updates the scale for next iteration.
        scaler.update()
