# From knowledge/performance/11-jit-compilation-graph-mode.md line 89. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

def foo(x, y):
    return 2 * x + y

# Run `foo` with the provided inputs and record the tensor operations
traced_foo = torch.jit.trace(foo, (torch.rand(3), torch.rand(3)))

# `traced_foo` can now be run with the TorchScript interpreter or saved
# and loaded in a Python-free environment
