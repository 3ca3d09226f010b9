# From knowledge/performance/03-mixed-precision-training-advanced.md line 309. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

# Muon only supports 2D params; use a standard optimizer
# such as AdamW for biases, embeddings, and other non-2D
# parameters.
muon_params = [
    p for p in model.parameters() if p.ndim == 2
]
other_params = [
    p for p in model.parameters() if p.ndim != 2
]
optim_muon = torch.optim.Muon(
    muon_params, lr=0.02, momentum=0.95
)
optim_adamw = torch.optim.AdamW(
    other_params, lr=3e-4, weight_decay=0.01
)
optim_muon.zero_grad()
optim_adamw.zero_grad()
loss_fn(model(input), target).backward()
optim_muon.step()
optim_adamw.step()
