# From knowledge/performance/08-torch-compile-deep-dive.md line 112. Written by kb validate-snippets: edit the Markdown, not this file.
import torch
import logging

# # The following changes the "dynamo" component to emit DEBUG-level
# # logs, and to emit "graph_code" artifacts.

torch._logging.set_logs(dynamo=logging.DEBUG, graph_code=True)

# # The following enables the logs for a different module

torch._logging.set_logs(modules={"unregistered.module.name": logging.DEBUG})
