"""Caption types for the breakdown, and the published table shipped as data."""

from __future__ import annotations

import pytest

from turnout.evaluation import caption_type, published_models, published_recall


@pytest.mark.parametrize(
    ("text", "spatial", "objects"),
    [
        ("A dog to the left of a red car.", True, "several objects"),
        ("A man standing in front of a building", True, "several objects"),
        ("A cat sleeping on top of the fridge", True, "one object"),
        ("A woman smiling", False, "one object"),
        ("Two dogs play in the snow", False, "several objects"),
        ("Children run through a sprinkler", False, "several objects"),
        ("A sunny afternoon", False, "no known object"),
        ("A brightly lit scene", False, "no known object"),
        ("Someone turned right at the corner", True, "no known object"),
    ],
)
def test_caption_types(text: str, spatial: bool, objects: str) -> None:
    found = caption_type(text)
    assert found.spatial is spatial and found.objects == objects


def test_spatial_words_match_whole_words_only() -> None:
    assert not caption_type("A bright leftover sandwich").spatial
    assert caption_type("The ball is behind the tree").spatial


def test_published_figures_match_the_reference_table() -> None:
    clip_l = published_recall("openai/clip-vit-large-patch14", "flickr30k")
    assert clip_l is not None
    assert clip_l.value("text_to_image", 1) == 65.0
    assert clip_l.value("image_to_text", 10) == 99.2
    siglip_l = published_recall("google/siglip-large-patch16-256", "coco")
    assert siglip_l is not None and siglip_l.value("image_to_text", 5) == 88.7
    siglip2 = published_recall("google/siglip2-base-patch16-256", "coco")
    assert siglip2 is not None and siglip2.value("text_to_image", 5) is None
    assert published_recall("google/siglip2-base-patch16-256", "flickr30k") is None
    assert published_recall("someone/else", "flickr30k") is None
    assert len(published_models()) == 12
