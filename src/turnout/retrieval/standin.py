"""Stand-in CLIP and SigLIP checkpoints, built on the spot with random weights.

No real encoder weights can be had offline, so the tests, the benchmarks' smoke runs and
the demo build these: two layers, width 32, a word-level tokenizer over the words given.
They load through the same `load_encoder` path as hub models, so everything around the
encoder is exercised for real; their rankings are arbitrary and say nothing about quality.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TEXT_LIMIT = 16  # token positions; longer text is truncated by the tokenizer


def words_of(text: str) -> tuple[str, ...]:
    """The distinct lower-case words of a text, in order: a stand-in tokenizer's vocabulary."""
    return tuple(dict.fromkeys(w.lower() for w in re.findall(r"\w+", text)))


def word_tokenizer(words: Iterable[str], model_max_length: int, with_mask: bool) -> Any:
    """A word-level fast tokenizer knowing `words` (lower-cased; others are [UNK])."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "[EOS]": 3}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)]
    )
    names = ["input_ids", "attention_mask"] if with_mask else ["input_ids"]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        model_max_length=model_max_length,
        model_input_names=names,
    )


def _tower(vocab: int | None = None) -> dict[str, int]:
    tower = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    if vocab is not None:
        tower |= {"vocab_size": vocab, "max_position_embeddings": TEXT_LIMIT}
    else:
        tower |= {"image_size": 32, "patch_size": 8}
    return tower


def _vocab_size(words: tuple[str, ...]) -> int:
    return max(64, len(words) + 4)


def build_standin_clip(path: Path, words: Iterable[str], seed: int = 0) -> Path:
    """A random-weight CLIP checkpoint in `path`, its tokenizer knowing `words`."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    vocab = tuple(words)
    torch.manual_seed(seed)
    text = _tower(vocab=_vocab_size(vocab)) | {
        "eos_token_id": 3,
        "bos_token_id": 2,
        "pad_token_id": 0,
    }
    config = CLIPConfig(text_config=text, vision_config=_tower(), projection_dim=16)
    CLIPModel(config).save_pretrained(path)
    word_tokenizer(vocab, TEXT_LIMIT, with_mask=True).save_pretrained(path)
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor.save_pretrained(path)
    return path


def build_standin_siglip(path: Path, words: Iterable[str], seed: int = 0) -> Path:
    """A random-weight SigLIP checkpoint in `path`, its tokenizer knowing `words`."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel

    vocab = tuple(words)
    torch.manual_seed(seed)
    config = SiglipConfig(text_config=_tower(vocab=_vocab_size(vocab)), vision_config=_tower())
    SiglipModel(config).save_pretrained(path)
    word_tokenizer(vocab, TEXT_LIMIT, with_mask=False).save_pretrained(path)
    SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(path)
    return path
