# From knowledge/performance/08-torch-compile-deep-dive.md line 146. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

@torch.compile
def foo(x): ...

@torch.compiler.set_stance("force_eager")
def bar():
    # will not be compiled
    foo(...)

bar()

with torch.compiler.set_stance("force_eager"):
    # will also not be compiled
    foo(...)

torch.compiler.set_stance("force_eager")
# will also not be compiled
foo(...)
torch.compiler.set_stance("default")

# will be compiled
foo(...)
