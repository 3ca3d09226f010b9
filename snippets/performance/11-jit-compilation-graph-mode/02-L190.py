# From knowledge/performance/11-jit-compilation-graph-mode.md line 190. Written by kb validate-snippets: edit the Markdown, not this file.
import torch

u = x.item()  # unbacked SymInt
torch._dynamo.override_optimization_hint(u, 42)
# From now on, any call to shape_env.optimization_hint(u, ...)
# returns 42 instead of the default heuristic value.
