"""turnout: a gateway and toolkit for multimodal LLM and RAG products.

The library surface lives in `turnout.core` (catalog, image-token rules, pricing,
settings, errors). Nothing here reads files, builds settings or touches the network
at import time.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
