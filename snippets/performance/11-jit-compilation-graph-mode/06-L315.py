# From knowledge/performance/11-jit-compilation-graph-mode.md line 315. Written by kb validate-snippets: edit the Markdown, not this file.
# Make sure that ``MASTER_ADDR`` and ``MASTER_PORT`` are set properly
# on both workers. Refer to :meth:`~torch.distributed.init_process_group`
# API for more details. For example,

# ...

# On worker 0:
import torch
import torch.distributed.rpc as rpc
rpc.init_rpc("worker0", rank=0, world_size=2)
rref1 = rpc.remote("worker1", torch.add, args=(torch.ones(2), 3))
rref2 = rpc.remote("worker1", torch.add, args=(torch.ones(2), 1))
x = rref1.to_here() + rref2.to_here()
rpc.shutdown()

# On worker 1:
import torch.distributed.rpc as rpc
rpc.init_rpc("worker1", rank=1, world_size=2)
rpc.shutdown()

# Below is an example of running a TorchScript function using RPC.

# On both workers:
@torch.jit.script
def my_script_add(tensor: torch.Tensor, scalar: int):
   return torch.add(tensor, scalar)

# On worker 0:
import torch.distributed.rpc as rpc
rpc.init_rpc("worker0", rank=0, world_size=2)
rref = rpc.remote("worker1", my_script_add, args=(torch.ones(2), 3))
rref.to_here()
rpc.shutdown()

# On worker 1:
import torch.distributed.rpc as rpc
rpc.init_rpc("worker1", rank=1, world_size=2)
rpc.shutdown()
