"""No query can return, read or remove another tenant's item, whatever it passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.core import InvalidInputError
from turnout.retrieval.index import InvalidFilterError, create_collection

from .helpers import BACKENDS, items, settings_for, unit_vectors

DIM = 8


@pytest.mark.parametrize("backend", BACKENDS)
def test_adversarial_queries_stay_inside_the_tenant(tmp_path: Path, backend: str) -> None:
    settings = settings_for(tmp_path, backend)
    vectors = unit_vectors(30, DIM)
    with create_collection(settings, "shared", DIM) as c:
        # Same item ids, same vectors, two tenants.
        c.upsert(items(15, "acme"), vectors[:15])
        c.upsert(items(15, "globex"), vectors[:15])
        c.upsert(items(15, "globex", prefix="secret"), vectors[15:])
        for v in vectors:
            hits = c.search(v, tenant="acme", k=100)
            assert len(hits) == 15
            assert {h.item.tenant for h in hits} == {"acme"}
            assert not any(h.item.id.startswith("secret") for h in hits)
        with pytest.raises(InvalidFilterError, match="tenant"):
            c.search(vectors[0], tenant="acme", filters={"tenant": "globex"})
        for key in ("payload.tenant", "meta.x') OR 1=1 --", "meta", "$.tenant"):
            with pytest.raises(InvalidFilterError):
                c.search(vectors[0], tenant="acme", filters={key: "globex"})
        # An id of another tenant's item names nothing for this tenant.
        assert c.search(vectors[20], tenant="acme", k=3, filters={"item_id": "secret5"}) == []
        assert c.get("acme", ["secret5", "item1"])[0].tenant == "acme"
        assert len(c.get("acme", ["secret5"])) == 0
        assert c.delete("acme", ["secret5", "secret6"]) == 0
        assert c.count("globex") == 30
        # Deleting acme's item1 leaves globex's item1 alone.
        assert c.delete("acme", ["item1"]) == 1
        assert c.count("acme") == 14 and c.count("globex") == 30
        assert [i.id for i in c.get("globex", ["item1"])] == ["item1"]
        for bad in ("", "*", "acme OR 1=1", "../globex", "a" * 200):
            with pytest.raises(InvalidInputError):
                c.search(vectors[0], tenant=bad)
