"""Visual search through the HTTP API: uploads, text and image queries, thumbnails,
deletion, bad input, and tenant isolation (another tenant's items and collections are
"not found", exactly like ones that never existed)."""

from __future__ import annotations

import asyncio
import io
import secrets
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ..index.corpus import PHOTOS, bomb_png, make_pdf, photo
from .conftest import Gateway, data_uri, jpeg_bytes


def new_tenant(gateway: Gateway) -> httpx.Client:
    return gateway.client(gateway.tenant(f"t{secrets.token_hex(4)}"))


def upload_photos(client: httpx.Client, collection: str, names: tuple[str, ...] = PHOTOS[:4]):  # type: ignore[no-untyped-def]
    files = [("file", (f"{n}.png", jpeg_bytes(photo(n, 128), "PNG"), "image/png")) for n in names]
    response = client.post(f"/v1/collections/{collection}/items", files=files)
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_then_search_by_text_and_image(gateway: Gateway) -> None:
    alice = new_tenant(gateway)
    uploaded = upload_photos(alice, "photos")
    assert uploaded["items"] == 4 and not uploaded["skipped"]
    ids = {f["file"]: f["items"][0] for f in uploaded["files"]}
    assert set(ids) == {f"{n}.png" for n in PHOTOS[:4]}

    found = alice.post("/v1/search", json={"collection": "photos", "query": "a cat", "k": 3})
    assert found.status_code == 200, found.text
    body = found.json()
    assert len(body["data"]) == 3
    assert [hit["rank"] for hit in body["data"]] == [1, 2, 3]
    scores = [hit["score"] for hit in body["data"]]
    assert scores == sorted(scores, reverse=True)
    for hit in body["data"]:
        assert hit["id"] in ids.values()
        assert hit["source"] in ids  # the file's name, not the server's path
        assert hit["modality"] == "image"
        assert hit["thumbnail_url"] == f"/v1/items/{hit['id']}/thumbnail"
    assert set(body["timings_ms"]) == {"embed", "search", "total"}
    assert "embed;dur=" in found.headers["server-timing"]

    # Image to image: the coffee photo itself comes first.
    query = data_uri(jpeg_bytes(photo("coffee", 128), "PNG"))
    by_image = alice.post("/v1/search", json={"collection": "photos", "image": query, "k": 2})
    assert by_image.status_code == 200, by_image.text
    top = by_image.json()["data"][0]
    assert top["source"] == "coffee.png" and top["score"] > 0.99

    both = alice.post(
        "/v1/search", json={"collection": "photos", "image": query, "query": "a cup", "k": 4}
    )
    assert both.status_code == 200 and len(both.json()["data"]) == 4


def test_thumbnails_are_bounded_jpegs_of_the_tenants_own_items(gateway: Gateway) -> None:
    alice, mallory = new_tenant(gateway), new_tenant(gateway)
    big = Image.fromarray(__import__("skimage.data").data.astronaut())  # 512 x 512
    files = [("file", ("astronaut.png", jpeg_bytes(big, "PNG"), "image/png"))]
    made = alice.post("/v1/collections/photos/items", files=files)
    assert made.status_code == 201, made.text
    item = made.json()["files"][0]["items"][0]

    thumb = alice.get(f"/v1/items/{item}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(thumb.content))
    assert max(image.size) == 256

    theirs = mallory.get(f"/v1/items/{item}/thumbnail")
    forged = mallory.get("/v1/items/it_bm90LWEtcmVhbC1pZA/thumbnail")
    assert theirs.status_code == forged.status_code == 404
    assert "not found" in theirs.json()["error"]["message"]


def test_other_tenants_collections_and_items_do_not_exist_for_a_tenant(gateway: Gateway) -> None:
    alice, mallory = new_tenant(gateway), new_tenant(gateway)
    uploaded = upload_photos(alice, "private-photos", PHOTOS[:2])
    item = uploaded["files"][0]["items"][0]

    theirs = mallory.post("/v1/search", json={"collection": "private-photos", "query": "a cat"})
    nowhere = mallory.post("/v1/search", json={"collection": "no-such-thing", "query": "a cat"})
    assert theirs.status_code == nowhere.status_code == 404
    message = theirs.json()["error"]["message"]
    assert message == nowhere.json()["error"]["message"].replace("no-such-thing", "private-photos")
    assert mallory.get("/v1/collections/private-photos").status_code == 404
    assert alice.get("/v1/collections/private-photos").json()["items"] == 2

    # Adversarial filters name no other tenant's items.
    for filters in ({"tenant": "x"}, {"item_id": item}, {"source": "/"}):
        probe = mallory.post(
            "/v1/search",
            json={"collection": "private-photos", "query": "cat", "filters": filters},
        )
        assert probe.status_code in (400, 404)
    assert mallory.delete(f"/v1/collections/private-photos/items/{item}").status_code == 404

    # Mallory's own upload to the same collection sees only Mallory's items.
    upload_photos(mallory, "private-photos", PHOTOS[2:3])
    seen = mallory.post(
        "/v1/search", json={"collection": "private-photos", "query": "a rocket", "k": 10}
    ).json()["data"]
    assert [hit["source"] for hit in seen] == [f"{PHOTOS[2]}.png"]


def test_deleting_an_uploaded_item_removes_its_file_and_items(gateway: Gateway) -> None:
    alice = new_tenant(gateway)
    uploaded = upload_photos(alice, "photos", PHOTOS[:3])
    pdf = make_pdf(gateway.home / "tmp" / "guide.pdf", ["one page", "two page"])
    doc = alice.post(
        "/v1/collections/photos/items",
        files=[("file", ("guide.pdf", pdf.read_bytes(), "application/pdf"))],
    ).json()
    assert doc["items"] == 4  # two pages and their text items
    assert alice.get("/v1/collections/photos").json()["items"] == 7

    gone = alice.delete(f"/v1/collections/photos/items/{doc['files'][0]['items'][0]}")
    assert gone.status_code == 200 and gone.json()["items_removed"] == 4
    assert alice.get("/v1/collections/photos").json()["items"] == 3
    removed = uploaded["files"][0]["items"][0]
    assert alice.delete(f"/v1/collections/photos/items/{removed}").json()["items_removed"] == 1
    left = alice.post("/v1/search", json={"collection": "photos", "query": "a", "k": 10}).json()
    assert removed not in {hit["id"] for hit in left["data"]} and len(left["data"]) == 2


def test_bad_queries_get_clear_4xx(gateway: Gateway, tmp_path: Path) -> None:
    alice = new_tenant(gateway)
    upload_photos(alice, "photos", PHOTOS[:2])

    def search(**body: object) -> httpx.Response:
        return alice.post("/v1/search", json={"collection": "photos", **body})

    cases = [
        (search(query="   "), 400, "empty"),
        (search(), 400, "give a text"),
        (search(query="cat", k=0), 400, "k: expected a whole number from 1 to 100"),
        (search(query="cat", k=10_000), 400, "k: expected"),
        (search(query="cat", filters={"colour": "red"}), 400, "filter key 'colour'"),
        (search(query="cat", modality="video"), 400, "modality"),
        (search(image="data:image/png;base64,bm90IGFuIGltYWdl"), 400, "corrupt or not an image"),
        (search(image="%%%"), 400, "base64"),
        (search(image=data_uri(bomb_png(tmp_path / "bomb.png").read_bytes())), 413, "pixels"),
        (alice.post("/v1/search", content=b"{not json"), 400, "invalid search"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (words, response.text)
        assert words in response.json()["error"]["message"], response.text
    assert alice.post("/v1/search", json={"query": "x"}).status_code == 400
    anonymous = httpx.post(f"{gateway.url}/v1/search", json={"collection": "photos", "query": "x"})
    assert anonymous.status_code == 401


def test_bad_uploads_are_refused_and_nothing_is_kept(gateway: Gateway, tmp_path: Path) -> None:
    alice = new_tenant(gateway)
    post = alice.post
    corrupt = post(
        "/v1/collections/photos/items", files=[("file", ("x.png", b"\x89PNG broken", "image/png"))]
    )
    assert corrupt.status_code == 400 and "x.png" in corrupt.json()["error"]["message"]
    wrong = post("/v1/collections/photos/items", files=[("file", ("x.exe", b"MZ", "x/y"))])
    assert wrong.status_code == 415
    assert post("/v1/collections/photos/items", json={"a": 1}).status_code == 400
    bad_name = post(
        "/v1/collections/bad name!/items",
        files=[("file", ("a.png", jpeg_bytes(photo("coffee"), "PNG"), "image/png"))],
    )
    assert bad_name.status_code == 400 and "collection name" in bad_name.json()["error"]["message"]
    # One good file beside a corrupt one: the good one is indexed, the bad one reported.
    mixed = post(
        "/v1/collections/photos/items",
        files=[
            ("file", ("ok.png", jpeg_bytes(photo("coffee"), "PNG"), "image/png")),
            ("file", ("bad.png", b"\x89PNG broken", "image/png")),
        ],
    )
    assert mixed.status_code == 201, mixed.text
    assert [s["file"] for s in mixed.json()["skipped"]] == ["bad.png"]
    assert alice.get("/v1/collections/photos").json()["items"] == 1


def test_query_embeddings_are_cached_and_batched(gateway: Gateway) -> None:
    alice = new_tenant(gateway)
    upload_photos(alice, "photos", PHOTOS[:2])
    retrieval = gateway.app.state.retrieval
    alice.post("/v1/search", json={"collection": "photos", "query": "a red ball"})
    (embedder,) = retrieval.encoders._loaded.values()
    before = embedder.batches
    again = alice.post("/v1/search", json={"collection": "photos", "query": "a red ball"})
    assert again.status_code == 200 and embedder.batches == before  # served from the cache

    key = alice.headers["authorization"]

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=gateway.url, headers={"authorization": key}) as c:
            replies = await asyncio.gather(
                *(
                    c.post("/v1/search", json={"collection": "photos", "query": f"dog {i} car"})
                    for i in range(16)
                )
            )
        return [r.status_code for r in replies]

    start = embedder.batches
    assert asyncio.run(burst()) == [200] * 16
    assert 1 <= embedder.batches - start < 16  # concurrent queries shared forward passes


@pytest.mark.parametrize("name", ["../escape.png", "dir/x.png"])
def test_upload_names_stay_inside_the_tenants_folder(gateway: Gateway, name: str) -> None:
    alice = new_tenant(gateway)
    files = [("file", (name, jpeg_bytes(photo("coffee"), "PNG"), "image/png"))]
    made = alice.post("/v1/collections/photos/items", files=files)
    assert made.status_code == 201, made.text
    stored = made.json()["files"][0]["file"]
    assert "/" not in stored and ".." not in stored


def test_uploads_are_under_the_freshness_slo_and_in_the_metrics(gateway: Gateway) -> None:
    from turnout.gateway.retrieval import uploads_dir

    tenant = f"t{secrets.token_hex(4)}"
    alice = gateway.client(gateway.tenant(tenant))
    upload_photos(alice, "fresh", PHOTOS[:2])
    described = alice.get("/v1/collections/fresh").json()
    assert described["items"] == 2
    fresh = described["freshness"]
    assert fresh["pending"] == 0 and fresh["slo_ok"] is True and fresh["last_refresh"] > 0

    # A change at the source (the tenant's upload folder) not yet indexed is pending, and
    # the age of the oldest such change is exported per collection.
    folder = uploads_dir(gateway.app.state.retrieval.settings, "fresh", tenant)
    photo("rocket").save(folder / "late.png")
    assert alice.get("/v1/collections/fresh").json()["freshness"]["pending"] == 1
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'turnout_index_freshness_age_seconds{collection="fresh"}' in metrics


def _searches(gateway: Gateway) -> dict[tuple[str, str, str], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{gateway.url}/metrics").text
    return {
        (s.labels["collection"], s.labels["query"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "turnout_searches_total"
    }


def test_searches_are_counted_by_kind_and_outcome_with_bounded_labels(gateway: Gateway) -> None:
    alice = new_tenant(gateway)
    upload_photos(alice, "counted")
    before = _searches(gateway)
    query = data_uri(jpeg_bytes(photo("coffee", 128), "PNG"))
    assert alice.post("/v1/search", json={"collection": "counted", "query": "a cat"}).is_success
    assert alice.post("/v1/search", json={"collection": "counted", "image": query}).is_success
    missing = alice.post("/v1/search", json={"collection": "made-up-name-123", "query": "x"})
    assert missing.status_code == 404
    after = _searches(gateway)

    def grew(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert grew(("counted", "text", "ok")) == 1 and grew(("counted", "image", "ok")) == 1
    # a failed search is counted without the name it asked for (callers could mint labels)
    assert not any(key[0] == "made-up-name-123" for key in after)
    assert sum(grew(key) for key in after if key[0] == "-" and key[2] != "ok") == 1
