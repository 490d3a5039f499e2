"""Retrieval: the sentence-transformers embedder (embedder.py), the faiss passage index
(index.py) and passages read back from the index folder (passages_file.py)."""
