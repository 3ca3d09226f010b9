# From knowledge/performance/09-optimizer-optimization.md line 215. Written by kb validate-snippets: edit the Markdown, not this file.
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import StateDictType
from torch.distributed.fsdp import FullStateDictConfig
from torch.distributed.fsdp import FullOptimStateDictConfig
# Save a checkpoint
model, optim = ...
FSDP.set_state_dict_type(
    model,
    StateDictType.FULL_STATE_DICT,
    FullStateDictConfig(rank0_only=False),
    FullOptimStateDictConfig(rank0_only=False),
)
state_dict = model.state_dict()
optim_state_dict = FSDP.optim_state_dict(model, optim)
save_a_checkpoint(state_dict, optim_state_dict)
# Load a checkpoint
model, optim = ...
state_dict, optim_state_dict = load_a_checkpoint()
FSDP.set_state_dict_type(
    model,
    StateDictType.FULL_STATE_DICT,
    FullStateDictConfig(rank0_only=False),
    FullOptimStateDictConfig(rank0_only=False),
)
model.load_state_dict(state_dict)
optim_state_dict = FSDP.optim_state_dict_to_load(
    model, optim, optim_state_dict
)
optim.load_state_dict(optim_state_dict)
