"""The offline engine: the ``local`` researcher (BM25 over kb.corpus) and the ``offline`` extractive writer."""
