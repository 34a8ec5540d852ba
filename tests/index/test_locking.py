"""An embedded collection open in one place is refused elsewhere with a message that says
so (and not, as before, one suggesting the folder is damaged and should be deleted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.retrieval.index import IndexStorageError, create_collection, open_collection

from .helpers import settings_for


def test_a_collection_open_elsewhere_is_refused_with_what_to_do(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "edge")
    with (
        create_collection(settings, "held", 8),
        pytest.raises(IndexStorageError, match="open in another process") as refused,
    ):
        open_collection(settings, "held")
    assert "delete" not in str(refused.value)
    assert "GET /v1/collections/NAME" in str(refused.value)
