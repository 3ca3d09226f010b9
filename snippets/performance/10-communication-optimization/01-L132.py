# From knowledge/performance/10-communication-optimization.md line 132. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import torch
import torch.distributed as dist

# Below is an example of a Parallel SGD algorithm where gradients are encoded before
# allreduce, and then decoded after allreduce.

def encode_and_decode(state: object, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    encoded_tensor = encode(bucket.buffer())  # encode gradients
    fut = torch.distributed.all_reduce(encoded_tensor).get_future()
    # Define the then callback to decode.
    def decode(fut):
        decoded_tensor = decode(fut.value()[0])  # decode gradients
        return decoded_tensor
    return fut.then(decode)
ddp.register_comm_hook(state=None, hook=encode_and_decode)
