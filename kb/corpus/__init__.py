"""The local corpus the offline engine searches: knowledge tree, kb.toml folders, package docstrings.

``kb.corpus.index.load_corpus(workspace)`` gives a ``CorpusIndex`` (BM25, bm25s), built
under ``.kb/corpus/`` and rebuilt only when its inputs change. This package module stays
empty so the docstring extractor's subprocess (``python -m kb.corpus.docstrings``) starts light.
"""
