# From knowledge/performance/09-optimizer-optimization.md line 245. Written by kb validate-snippets: edit the Markdown, not this file.
from torch.optim.lr_scheduler import CosineAnnealingLR

num_epochs = 100
scheduler = CosineAnnealingLR(optimizer, T_max=num_epochs)
for epoch in range(num_epochs):
    train(...)
    validate(...)
    scheduler.step()
