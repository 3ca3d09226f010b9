# From knowledge/performance/06-gradient-accumulation-large-batch.md line 97. Written by kb validate-snippets: edit the Markdown, not this file.
engine.set_gradient_accumulation_boundary(False)
for _ in range(gradient_accumulation_steps - 1):
    micro_batch = next(data_loader)
    loss = engine(micro_batch)
    engine.backward(loss)
engine.set_gradient_accumulation_boundary(True)
micro_batch = next(data_loader)
loss = engine(micro_batch)
engine.backward(loss)
engine.step()
