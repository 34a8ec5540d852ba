"""Collections as the gateway uses them: one thread each, public item ids, tenant scope.

A collection's backend (a Qdrant Edge shard, a FAISS index) and its manifest's SQLite
connection belong to the thread that opened them, and writes must not interleave with
reads: every operation on one collection runs, in order, on that collection's own thread.

Collections hold the items of many tenants. To a tenant, a collection exists when it
holds some of that tenant's items; the answers for "no such collection" and "another
tenant's collection" are the same, so no response tells one tenant what another has.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from turnout.core import InvalidInputError, NotFoundError, Settings

if TYPE_CHECKING:
    from turnout.retrieval.index import Collection

T = TypeVar("T")

_ID_PREFIX = "it_"
# How long "does this tenant have items here" is remembered (the auto retrieval rule asks
# it on every request of a rag route).
_PRESENCE_TTL_S = 2.0


class CollectionNotVisibleError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"collection {name!r} not found: it holds none of this tenant's items "
            f"(upload some with POST /v1/collections/{name}/items)"
        )


class ItemNotFoundError(NotFoundError):
    def __init__(self, public_id: str) -> None:
        super().__init__(f"item {public_id[:200]!r} not found")


def public_id(collection: str, item_id: str) -> str:
    """An opaque, URL-safe id naming one item of one collection."""
    raw = f"{collection}\x00{item_id}".encode()
    return _ID_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_public_id(value: str) -> tuple[str, str]:
    """(collection, item id) of a public id; ItemNotFoundError for anything else."""
    if not value.startswith(_ID_PREFIX) or len(value) > 4096:
        raise ItemNotFoundError(value)
    body = value[len(_ID_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ItemNotFoundError(value) from None
    collection, sep, item_id = raw.partition("\x00")
    if not sep or not collection or not item_id:
        raise ItemNotFoundError(value)
    return collection, item_id


class CollectionThread:
    """One collection, opened lazily on its own thread; operations queue in order."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.settings = settings
        self.name = name
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"turnout-collection-{name}")
        self._collection: Collection | None = None
        self._presence: dict[str, tuple[float, bool]] = {}

    # -- on the collection's thread ---------------------------------------------------------

    def _open(self) -> Collection | None:
        if self._collection is None:
            from turnout.retrieval.index import list_collections, open_collection

            if self.name in list_collections(self.settings):
                self._collection = open_collection(self.settings, self.name)
        return self._collection

    def _create(self, encoder: Any, documents: Any) -> Collection:
        from turnout.retrieval.index import create_collection

        if self._open() is None:
            self._collection = create_collection(
                self.settings,
                self.name,
                encoder.dim,
                encoder=encoder,
                exist_ok=True,
                documents=documents,
            )
        assert self._collection is not None
        return self._collection

    # -- from the event loop ----------------------------------------------------------------

    async def run(self, work: Callable[[Collection], T]) -> T:
        """`work(collection)` on the collection's thread; not found when it does not exist."""

        def job() -> T:
            collection = self._open()
            if collection is None:
                raise CollectionNotVisibleError(self.name)
            return work(collection)

        return await asyncio.get_running_loop().run_in_executor(self._pool, job)

    def run_blocking(self, work: Callable[[Collection], T], timeout: float = 30.0) -> T:
        """`run` for callers on other threads (a metrics scrape, the dashboard's data)."""

        def job() -> T:
            collection = self._open()
            if collection is None:
                raise CollectionNotVisibleError(self.name)
            return work(collection)

        return self._pool.submit(job).result(timeout=timeout)

    async def run_creating(
        self, encoder: Any, work: Callable[[Collection], T], documents: Any = None
    ) -> T:
        """As `run`, creating the collection for `encoder` (and, with `documents`, as a
        document collection) first when it does not exist."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, lambda: work(self._create(encoder, documents))
        )

    async def spec(self) -> Any:
        """The collection's recorded spec, or None when it does not exist."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool,
            lambda: None if self._open() is None else self._open().spec,  # type: ignore[union-attr]
        )

    async def visible_to(self, tenant: str) -> bool:
        """Whether the tenant has items here (remembered for a moment)."""
        now = time.monotonic()
        known = self._presence.get(tenant)
        if known is not None and now - known[0] < _PRESENCE_TTL_S:
            return known[1]

        def count() -> bool:
            collection = self._open()
            return collection is not None and collection.count(tenant) > 0

        present = await asyncio.get_running_loop().run_in_executor(self._pool, count)
        self._presence[tenant] = (time.monotonic(), present)
        return present

    def forget_presence(self, tenant: str) -> None:
        self._presence.pop(tenant, None)

    async def close(self) -> None:
        def shut() -> None:
            if self._collection is not None:
                self._collection.close()
                self._collection = None

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)


class Collections:
    """The gateway's collections by name, each on its own thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._threads: dict[str, CollectionThread] = {}

    def get(self, name: str, *, create: bool = False) -> CollectionThread:
        """The collection's thread; not found unless it exists or `create` is set.

        Only collections that exist (or are being created) get a thread, so requests
        naming made-up collections cost a directory listing, not a thread each."""
        thread = self._threads.get(name)
        if thread is not None:
            return thread
        from turnout.retrieval.index import CollectionNotFoundError, list_collections, read_spec

        if not isinstance(name, str) or not name:
            raise InvalidInputError("collection: expected a collection name")
        if name not in list_collections(self.settings):
            if not create:
                raise CollectionNotVisibleError(name)
            with contextlib.suppress(CollectionNotFoundError):
                read_spec(self.settings, name)  # refuses names a collection cannot have
        thread = self._threads[name] = CollectionThread(self.settings, name)
        return thread

    async def close(self) -> None:
        for thread in self._threads.values():
            await thread.close()
        self._threads.clear()
