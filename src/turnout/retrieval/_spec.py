"""Encoder specs: `org/name`, `hf:org/name[@revision]` or a local directory, resolved to files.

A hub model is fetched once with `huggingface_hub` into its cache and used from there
offline; its revision is the commit the snapshot came from. A local directory's revision
is a fingerprint of its files, so retraining into the same folder is noticed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._errors import EncoderLoadError, UnknownEncoderError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_REVISION = re.compile(r"^[\w./-]+$")
# What a dual encoder needs: safetensors weights, or the pickle format only as a fallback.
_MODEL_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]
_LEGACY_WEIGHTS = ["pytorch_model.bin"]


@dataclass(frozen=True)
class EncoderSpec:
    """What the user wrote, parsed: a hub repository (with revision) or a local directory."""

    text: str
    kind: Literal["hub", "local"]
    ref: str
    revision: str | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """A spec pinned to files on disk and an identity that changes when they do."""

    spec: EncoderSpec
    path: Path
    model_id: str
    revision: str


def parse_encoder_spec(text: str) -> EncoderSpec:
    """Parse `org/name`, `hf:org/name[@revision]` or a directory path; never touches the network."""
    raw = text.strip()
    if raw.startswith("hf:"):
        ref, _, revision = raw[3:].partition("@")
        if not _HUB_ID.match(ref) or (revision and not _REVISION.match(revision)):
            raise UnknownEncoderError(
                f"encoder {text!r}: expected hf:ORG/NAME or hf:ORG/NAME@REVISION"
            )
        return EncoderSpec(text=raw, kind="hub", ref=ref, revision=revision or None)
    path = Path(raw).expanduser()
    if path.is_dir():
        return EncoderSpec(text=raw, kind="local", ref=str(path.resolve()))
    looks_like_path = raw.startswith(("/", ".", "~")) or path.exists() or raw.count("/") > 1
    if looks_like_path or not _HUB_ID.match(raw):
        what = "is not a directory" if path.exists() else "no such directory"
        raise UnknownEncoderError(
            f"encoder {text!r}: {what}, and not a hub id; give a model directory, a hub id "
            "such as openai/clip-vit-base-patch32, or hf:ORG/NAME@REVISION"
        )
    return EncoderSpec(text=raw, kind="hub", ref=raw)


def resolve_encoder_spec(
    spec: EncoderSpec | str, *, cache_dir: Path | None = None
) -> ResolvedModel:
    """Pin a spec to a directory of model files, downloading a hub model when needed."""
    if isinstance(spec, str):
        spec = parse_encoder_spec(spec)
    if spec.kind == "local":
        path = Path(spec.ref)
        if not (path / "config.json").is_file():
            raise EncoderLoadError(
                f"encoder {spec.text!r}: {path} has no config.json; point at a folder written "
                "by save_pretrained (config.json, weights, tokenizer and preprocessor files)"
            )
        return ResolvedModel(spec, path, str(path), _local_revision(path))
    path = _download(spec, cache_dir)
    return ResolvedModel(spec, path, spec.ref, path.name)


def _download(spec: EncoderSpec, cache_dir: Path | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"@{spec.revision}" if spec.revision else ""
    try:
        found = snapshot_download(
            spec.ref, revision=spec.revision, cache_dir=cache_dir, allow_patterns=_MODEL_FILES
        )
        path = Path(str(found))
        if not any(path.glob("*.safetensors")):
            found = snapshot_download(
                spec.ref,
                revision=spec.revision,
                cache_dir=cache_dir,
                allow_patterns=_LEGACY_WEIGHTS,
            )
    except RevisionNotFoundError as exc:
        raise UnknownEncoderError(
            f"encoder {spec.text!r}: hub repository {spec.ref} has no revision {spec.revision!r}"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise UnknownEncoderError(
            f"encoder {spec.text!r}: no hub repository {spec.ref} (or it is gated: log in with "
            "`hf auth login` and accept its terms)"
        ) from exc
    except LocalEntryNotFoundError as exc:
        raise EncoderLoadError(
            f"encoder {spec.text!r}: {spec.ref}{at} is not in the Hugging Face cache and the hub "
            "cannot be reached (offline). Run once with internet access, or on a connected "
            f"machine run `hf download {spec.ref}` and copy its cache folder "
            "(~/.cache/huggingface/hub) here, or pass a local directory written by save_pretrained"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise EncoderLoadError(f"encoder {spec.text!r}: download failed: {exc}") from exc
    return Path(str(found))


def _local_revision(path: Path) -> str:
    """A fingerprint of a model folder: config text plus every file's name, size and mtime."""
    digest = hashlib.sha256()
    digest.update((path / "config.json").read_bytes())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        entry = [str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns]
        digest.update(json.dumps(entry).encode())
    return "local-" + digest.hexdigest()[:16]
