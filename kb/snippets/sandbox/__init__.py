"""The sandbox: a warm worker (worker.py + child.py, standard library only) and the kb-side pool."""
