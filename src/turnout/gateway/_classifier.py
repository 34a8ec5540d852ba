"""An embedding classifier for the starting tier: the prompt's nearest tier centroid.

Each tier's example prompts are embedded once, at start-up; a request's last user text is
embedded off the event loop and compared by cosine similarity. It decides only when the
best tier leads the runner-up by the configured margin, and only where no rule held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from turnout.core import ChatRequest, ClassifierSettings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from turnout.retrieval import TextEncoder

_MAX_CHARS = 2000  # the prompt's opening says what kind of request it is


@dataclass(frozen=True)
class Verdict:
    tier: str | None  # None: too close to call
    scores: dict[str, float]

    def why(self) -> str:
        ranked = ", ".join(
            f"{t}={s:.2f}" for t, s in sorted(self.scores.items(), key=lambda x: -x[1])
        )
        return f"classifier:{self.tier or 'undecided'}({ranked})"


class PromptClassifier:
    def __init__(self, encoder: TextEncoder, settings: ClassifierSettings) -> None:
        import numpy as np

        self._encoder = encoder
        self._margin = settings.margin
        self._tiers = list(settings.examples)
        centroids = []
        for tier in self._tiers:
            mean = encoder.embed_texts(settings.examples[tier]).mean(axis=0)
            centroids.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        self._centroids: npt.NDArray[np.float32] = np.stack(centroids).astype(np.float32)

    def classify(self, text: str) -> Verdict:
        vector = self._encoder.embed_texts([text[:_MAX_CHARS]])[0]
        similarity = self._centroids @ vector
        scores = {tier: float(s) for tier, s in zip(self._tiers, similarity, strict=True)}
        ordered = sorted(scores.values(), reverse=True)
        lead = ordered[0] - ordered[1] if len(ordered) > 1 else ordered[0]
        best = max(scores, key=scores.__getitem__)
        return Verdict(best if lead >= self._margin else None, scores)

    async def classify_request(self, request: ChatRequest) -> Verdict | None:
        text = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
        if not text.strip():
            return None  # nothing to read: an image-only question keeps the default
        return await anyio.to_thread.run_sync(self.classify, text)


def build_classifier(settings: ClassifierSettings) -> PromptClassifier:
    from turnout.retrieval import load_text_encoder

    return PromptClassifier(load_text_encoder(settings.encoder), settings)
