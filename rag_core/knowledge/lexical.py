"""A Japanese-aware lexical signal: Sudachi morphemes, BM25 over the candidate pool.

Why a morphological analyser: Japanese has no spaces, and character n-grams match
particles and kana fragments as readily as names (docs/embedding-choice.md measured
plain RRF with character bigrams losing to dense alone). Sudachi (``sudachipy`` with
``sudachidict_core``) splits words and maps spelling variants to one normalised form
(ほたて / ホタテ / 帆立 → 帆立, おねだん → 御 + 値段, English folded to lower case), so a
product name, a number or a word a liver writes in kana still matches. Sudachi,
fugashi + unidic-lite and Janome were measured on the dev split of
``benchmarks/retrieval_quality.py`` (docs/retrieval.md has the figures).

Only content morphemes count (nouns, verbs, adjectives, adverbs, prefixes such as
御): particles, auxiliaries, symbols and fillers would otherwise make every live
transcript match every other. BM25's statistics come from the candidate pool the
dense search returned: within that pool a word most candidates share (「今日」) weighs
little and a name one candidate has weighs much, which is what a re-ranker needs.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from sudachipy import Dictionary, SplitMode, Tokenizer

# Sudachi's first part-of-speech level of the morphemes that carry content.
CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "代名詞"})
# Okapi BM25 constants at their customary values (not tuned on the evaluation set).
K1 = 1.2
B = 0.75


_per_thread = threading.local()


@lru_cache(maxsize=1)
def _dictionary() -> Dictionary:
    return Dictionary(dict="core")


def _tokenizer() -> Tokenizer:
    """This thread's tokenizer: a Sudachi tokenizer refuses concurrent use, and searches run
    on the API's thread pool; the dictionary (the costly part) is loaded once and shared."""
    tokenizer: Tokenizer | None = getattr(_per_thread, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _per_thread.tokenizer = _dictionary().tokenizer(mode=SplitMode.B)
    return tokenizer


@lru_cache(maxsize=8192)
def terms(text: str) -> tuple[str, ...]:
    """Normalised content morphemes of ``text`` (cached: the same stored phases come back
    in many pools). Split mode B: compounds such as 加湿器 stay one term, while a product
    name written as two words still shares its parts."""
    if not text.strip():
        return ()
    normal = unicodedata.normalize("NFKC", text)
    return tuple(
        m.normalized_form().lower() for m in _tokenizer().tokenize(normal) if m.part_of_speech()[0] in CONTENT_POS
    )


def bm25(query: Sequence[str], documents: Sequence[Sequence[str]]) -> list[float]:
    """Okapi BM25 of each document for the query's distinct terms, statistics over ``documents``.

    A few lines of our own rather than a BM25 package: the packages index a corpus
    (bm25s on scipy sparse matrices), while this scores a pool of at most a few hundred
    candidates that changes with every query.
    """
    n = len(documents)
    if n == 0:
        return []
    lengths = [len(d) for d in documents]
    average = sum(lengths) / n or 1.0
    df = Counter(t for d in documents for t in set(d))
    wanted = set(query)
    scores = []
    for doc, length in zip(documents, lengths, strict=True):
        tf = Counter(t for t in doc if t in wanted)
        score = 0.0
        for term, count in tf.items():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            score += idf * count * (K1 + 1) / (count + K1 * (1 - B + B * length / average))
        scores.append(score)
    return scores


def lexical_scores(query: str, documents: Sequence[str]) -> list[float]:
    """BM25 of each document for ``query``, scaled by the best in the pool to [0, 1]
    (all 0 when no document shares a term with the query)."""
    raw = bm25(terms(query), [terms(d) for d in documents])
    best = max(raw, default=0.0)
    return [s / best if best > 0 else 0.0 for s in raw]
