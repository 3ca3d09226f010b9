# From knowledge/performance/12-distributed-training-optimization.md line 224. Written by kb validate-snippets: edit the Markdown, not this file.
from torch.distributed.elastic.multiprocessing.errors import record

@record
def main():
    # do train
    pass

if __name__ == "__main__":
    main()
