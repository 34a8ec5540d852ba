"""turnout's evaluation layer: retrieval metrics, the eval runner, reports and galleries.

from turnout.evaluation import evaluate_retrieval, write_report
from turnout.retrieval import EmbeddingCache, load_dataset

dataset = load_dataset("flickr30k", limit=200)
report = evaluate_retrieval(
    dataset,
    ["openai/clip-vit-base-patch32", "google/siglip-base-patch16-224"],
    cache=EmbeddingCache("~/.turnout/cache/embeddings.sqlite"),
)
print(report.encoders[0].text_to_image.at(1))
write_report(report, Path("eval-out"))
"""

from ._captions import GROUPS, SPATIAL_PHRASES, CaptionType, caption_type
from ._docqa import (
    DocQaReport,
    DocQuestion,
    QuestionResult,
    RetrieverScore,
    evaluate_docqa,
    load_questions,
)
from ._docqa_report import (
    DocQaFiles,
    docqa_html,
    docqa_markdown,
    docqa_table,
    write_docqa_report,
)
from ._gallery import gallery_html
from ._metrics import (
    ImageToTextRanks,
    bootstrap_ci,
    image_to_text_ranks,
    recall_at_k,
    text_to_image_ranks,
)
from ._progress import EvalProgress, RichProgress, SilentProgress
from ._published import PublishedRecall, published_models, published_recall
from ._report import ReportFiles, results_csv, results_markdown, results_table, write_report
from ._results import (
    DIRECTIONS,
    Direction,
    DirectionResult,
    EncoderResult,
    EncoderTimings,
    GroupRecall,
    Recall,
    RetrievalReport,
    SkippedImage,
)
from ._runner import evaluate_retrieval

__all__ = [
    "DIRECTIONS",
    "GROUPS",
    "SPATIAL_PHRASES",
    "CaptionType",
    "Direction",
    "DirectionResult",
    "DocQaFiles",
    "DocQaReport",
    "DocQuestion",
    "EncoderResult",
    "EncoderTimings",
    "EvalProgress",
    "GroupRecall",
    "ImageToTextRanks",
    "PublishedRecall",
    "QuestionResult",
    "Recall",
    "ReportFiles",
    "RetrievalReport",
    "RetrieverScore",
    "RichProgress",
    "SilentProgress",
    "SkippedImage",
    "bootstrap_ci",
    "caption_type",
    "docqa_html",
    "docqa_markdown",
    "docqa_table",
    "evaluate_docqa",
    "evaluate_retrieval",
    "gallery_html",
    "image_to_text_ranks",
    "load_questions",
    "published_models",
    "published_recall",
    "recall_at_k",
    "results_csv",
    "results_markdown",
    "results_table",
    "text_to_image_ranks",
    "write_docqa_report",
    "write_report",
]
