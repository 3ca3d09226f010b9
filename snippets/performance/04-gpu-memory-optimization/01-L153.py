# From knowledge/performance/04-gpu-memory-optimization.md line 153. Written by kb validate-snippets: edit the Markdown, not this file.
import torch
from torch.nn.parallel import DistributedDataParallel

if torch.accelerator.is_available():
    device_type = torch.accelerator.current_accelerator().type
    vendor_backend = torch.distributed.get_default_backend_for_device(device_type)

torch.distributed.init_process_group(
    backend=vendor_backend, world_size=N, init_method='...'
)
model = DistributedDataParallel(model, device_ids=[i], output_device=i)
