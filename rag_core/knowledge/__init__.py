"""The knowledge base: phases in Qdrant, outcome-aware search, analytics, feedback and the prompt block."""

from rag_core.knowledge.feedback import PhaseNotFoundError
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.store import EmbeddingMismatchError, VideoNotFoundError, VideoOwnershipError, point_id

__all__ = [
    "EmbeddingMismatchError",
    "KnowledgeBase",
    "PhaseNotFoundError",
    "VideoNotFoundError",
    "VideoOwnershipError",
    "point_id",
]
