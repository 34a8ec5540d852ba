"""Errors of the vector indexes, each a branch of core's one exception tree.

    TurnoutError (core)
    ├── ConfigError
    │   └── IndexBackendError          a backend missing, misconfigured or failing
    │       └── IndexStorageError      files on disk that cannot be read back (names them)
    ├── NotFoundError
    │   └── CollectionNotFoundError    a collection that was never created
    └── InvalidInputError
        ├── CollectionMismatchError    wrong dimension, distance or encoder for a collection
        ├── InvalidFilterError         a payload filter on a key items do not have
        └── UnusableSourceError        a file the indexer skips or refuses (names it, says why)
            └── UnreadableDocumentError  a PDF that will not open, or is encrypted

Foreign errors (qdrant, faiss, sqlite3, pypdfium2, OSError) are converted where they enter.
"""

from __future__ import annotations

from turnout.core import ConfigError, InvalidInputError, NotFoundError


class IndexBackendError(ConfigError):
    """A backend that cannot be used: not installed, unreachable, or it refused an operation."""


class IndexStorageError(IndexBackendError):
    """An index's files on disk are damaged or not what turnout wrote; the message names them."""


class CollectionNotFoundError(NotFoundError):
    """A collection name that no `turnout index add` (or `create_collection`) has made."""


class CollectionMismatchError(InvalidInputError):
    """Vectors or an encoder that do not fit the collection (dimension, distance, encoder)."""


class InvalidFilterError(InvalidInputError):
    """A search filter naming a key or value items cannot have."""


class UnusableSourceError(InvalidInputError):
    """A source file that cannot be indexed: the message names it and says why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class UnreadableDocumentError(UnusableSourceError):
    """A PDF that does not open: broken, truncated or encrypted."""
