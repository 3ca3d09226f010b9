# From knowledge/performance/12-distributed-training-optimization.md line 210. Written by kb validate-snippets: edit the Markdown, not this file.
def main():
    load_checkpoint(checkpoint_path)
    initialize()
    train()

def train():
    for batch in iter(dataset):
        train_step(batch)

        if should_checkpoint:
            save_checkpoint(checkpoint_path)
