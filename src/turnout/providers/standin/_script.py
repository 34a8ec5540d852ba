"""What the stand-in upstream answers: scripted replies per model, then a default."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Reply:
    """One scripted answer. Error fields win over content when `status` is not 200."""

    content: str | None = None  # None: the default answer text
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    status: int = 200
    error_type: str | None = None  # the provider's own error type, e.g. "rate_limit_error"
    error_message: str = "scripted error"
    retry_after: float | None = None
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between stream chunks
    malformed: bool = False  # a 200 whose body is not the provider's format
    drop_after: int | None = None  # streams: cut the connection after this many chunks
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    times: int | None = 1  # how many requests this reply answers; None: all of them

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Received:
    path: str
    model: str
    headers: dict[str, str]
    body: Any


@dataclass
class Served:
    """An answer the stand-in finished sending, with the usage it reported (what a real
    provider would bill), recorded after its last byte was handed to the server, whether
    or not the client was still there to read it. Times are `time.monotonic()`."""

    path: str
    model: str
    body: Any
    usage: dict[str, Any]
    started: float
    finished: float


@dataclass
class Script:
    """Per-model queues of replies, thread-safe (tests script from another thread)."""

    _queues: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    # What a model answers when its queue is empty (by model, or "*"): e.g. its latency.
    defaults: dict[str, Reply] = field(default_factory=dict)
    # OpenAI-format requests: prompt tokens as a real provider would bill them (body ->
    # tokens; see catalog_billing), where a reply does not set its own. None: the estimate.
    bill: Callable[[dict[str, Any]], int] | None = None
    received: deque[Received] = field(default_factory=lambda: deque(maxlen=2000))
    served: deque[Served] = field(default_factory=lambda: deque(maxlen=2000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, model: str, *replies: Reply) -> None:
        with self._lock:
            self._queues[model].extend(replies)

    def next_reply(self, model: str) -> Reply:
        with self._lock:
            queue = self._queues.get(model) or self._queues.get("*")
            if not queue:
                return self.defaults.get(model) or self.defaults.get("*") or Reply()
            reply = queue[0]
            if reply.times is not None:
                reply.times -= 1
                if reply.times <= 0:
                    queue.popleft()
            return reply

    def record(self, entry: Received) -> None:
        with self._lock:
            self.received.append(entry)

    def record_served(self, entry: Served) -> None:
        with self._lock:
            self.served.append(entry)

    def served_list(self) -> list[Served]:
        with self._lock:
            return list(self.served)

    def requests_for(self, model: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.model == model]

    def reset(self) -> None:
        with self._lock:
            self._queues.clear()
            self.defaults.clear()
            self.received.clear()
            self.served.clear()


def default_answer(model: str, prompt: str, texts: Sequence[str] = ()) -> str:
    """The unscripted answer: names the model and the question; where the request carries
    numbered sources (turnout's rag pattern), it cites the first, as a model asked to would."""
    words = prompt.split()
    gist = " ".join(words[:12]) + ("..." if len(words) > 12 else "")
    answer = (
        f"Simulated answer from {model} to: {gist}" if gist else f"Simulated answer from {model}."
    )
    if any(t.lstrip().startswith("[1] ") for t in texts):
        answer += " [1]"
    return answer


def estimate_prompt_tokens(texts: list[str], images: int) -> int:
    # About four characters a token, and a flat 85 per image: a stand-in, not a tokenizer.
    return max(1, sum(len(t) for t in texts) // 4) + 85 * images
