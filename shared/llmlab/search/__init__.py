"""Search: find the texts that answer a query, by meaning, by words, or both.

- ``embeddings``: text -> one unit vector (all-MiniLM-L6-v2).
- ``embedding_cache``: embed a corpus once, reuse the vectors (fingerprinted on disk).
- ``semantic_index``: exact cosine search over stored vectors (Phase 1); ``Hit``, a scored result.
- ``bm25``: keyword ranking written by hand.
- ``retrievers``: BM25, dense, faiss and hybrid retrievers behind one API (Phase 4).
- ``chunking``: cutting documents into the pieces a retriever indexes (``Chunk``, ``Chunker``).
- ``folder_index``: a folder of notes as a cached semantic index (``llmlab search``).
- ``docs_index``: a docs folder as an incremental hybrid index of passages (``llmlab ask``).

Builds on ``runtime`` and ``data``.
"""
