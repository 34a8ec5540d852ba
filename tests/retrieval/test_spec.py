"""Encoder specs: parsing, local folders, and hub ids that cannot be had offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.core import NotFoundError
from turnout.retrieval import (
    EncoderLoadError,
    UnknownEncoderError,
    load_encoder,
    parse_encoder_spec,
    resolve_encoder_spec,
)


@pytest.mark.parametrize(
    ("text", "kind", "ref", "revision"),
    [
        ("openai/clip-vit-base-patch32", "hub", "openai/clip-vit-base-patch32", None),
        ("hf:google/siglip-base-patch16-224", "hub", "google/siglip-base-patch16-224", None),
        (
            "hf:google/siglip2-base-patch16-256@v1.0",
            "hub",
            "google/siglip2-base-patch16-256",
            "v1.0",
        ),
        ("hf:org/name@0123abcd", "hub", "org/name", "0123abcd"),
    ],
)
def test_hub_specs(text: str, kind: str, ref: str, revision: str | None) -> None:
    spec = parse_encoder_spec(text)
    assert (spec.kind, spec.ref, spec.revision) == (kind, ref, revision)


def test_a_directory_is_a_local_spec(clip_dir: Path) -> None:
    spec = parse_encoder_spec(str(clip_dir))
    assert spec.kind == "local" and spec.ref == str(clip_dir.resolve())
    resolved = resolve_encoder_spec(spec)
    assert resolved.path == clip_dir.resolve() and resolved.revision.startswith("local-")


@pytest.mark.parametrize(
    "text", ["./no/such/model", "/no/such/dir", "not a model", "hf:", "hf:bad id", "a/b/c/d"]
)
def test_unknown_specs_say_what_is_accepted(text: str) -> None:
    with pytest.raises(UnknownEncoderError, match=r"hub id|hf:ORG/NAME") as caught:
        parse_encoder_spec(text)
    assert isinstance(caught.value, NotFoundError)


def test_a_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderLoadError, match=r"no config\.json"):
        resolve_encoder_spec(str(tmp_path))


def test_offline_hub_model_says_how_to_get_it() -> None:
    with pytest.raises(EncoderLoadError) as caught:
        load_encoder("openai/clip-vit-base-patch32")
    message = str(caught.value)
    assert "offline" in message and "hf download openai/clip-vit-base-patch32" in message
