from __future__ import annotations

from ..retrieval.conftest import clip_dir, offline, siglip_dir

__all__ = ["clip_dir", "offline", "siglip_dir"]
