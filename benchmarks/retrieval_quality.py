"""How well does ``KnowledgeBase.search`` find the right past phases, part by part?

    .venv/bin/python benchmarks/retrieval_quality.py               # test and dev tables, shipped settings
    .venv/bin/python benchmarks/retrieval_quality.py --tune        # weight grid on the DEV split only
    .venv/bin/python benchmarks/retrieval_quality.py --analysers   # Sudachi vs fugashi vs Janome, DEV only

The set (``benchmarks/data/retrieval/``, hand-written for this project, see its README):
110 phases of 7 kinds from six livers with their own voices (polite, Kansai, gyaru,
English-mixing, English, hesitant with typos) and 212 queries in four styles:
``intent`` (what a person types: 「在庫が残りわずかだと伝えて購入を急がせる場面」),
``keyword`` (a word or product family), ``name`` (a coined product name) and ``phase``
(the real workload: a new phase's own speech, with its phase type given, asks for past
phases). Relevance follows from labels, not from any system's output: an intent or
phase query wants phases of its kind (grade 2 when they also share its product or
topic, else 1); a keyword or name query wants phases of its product (grade 2 when they
also have the kind it asks about, or when it asks about none).

**Split.** A query belongs to the test split when the first hex digit of
SHA-256(style + text) is odd, else to dev. Weights, temperatures, thresholds and the
tokenizer were chosen on dev only (``--tune`` and ``--analysers`` refuse to read test
queries); the test table is what the shipped settings claim.

Every query runs through the real ``rag_core.knowledge.search.search`` over an
embedded Qdrant holding the corpus, once per configuration (settings overrides, nothing
patched): raw dense (the model's order: all extra weights 0, outcome weighting off),
then phase-aware, hybrid and diversity added one by one, and the shipped default (all of
them with outcome weighting, as the API serves). Reported: P@5 (share of the top 5 that
is relevant), MRR (first relevant in the top 10; 0 when none) and nDCG@10 (graded gains
2^g − 1), overall, per style and per query kind, and for each configuration the paired
bootstrap 95 % interval of its difference to raw dense over queries (10,000 resamples
of the split's queries): a difference whose interval excludes 0 is beyond the split's
noise. Embeddings are computed once and cached in ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag_core.analysis.record import parse_analysis
from rag_core.base.settings import Settings, load_settings
from rag_core.embeddings.base import Embedder
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge import lexical, ranking
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import SearchRequest
from rag_core.knowledge.search import search
from rag_core.knowledge.store import KnowledgeStore

DATA = Path(__file__).resolve().parent / "data" / "retrieval"
CACHE = Path(__file__).resolve().parent / "out" / "retrieval_vectors.json"
K = 10
RESAMPLES = 10_000
# Stream GMV per liver (yen): outcome weighting needs sales, and these make it a real
# factor (a 30x spread) without being tied to any query's labels.
LIVER_GMV = {"aoi": 1_200_000, "kenta": 800_000, "rina": 450_000, "mika": 300_000, "tom": 150_000, "yuki": 40_000}

CONFIGS: dict[str, dict[str, Any]] = {
    "raw dense": {"rank_weight_type": 0, "rank_weight_lexical": 0, "rank_weight_diversity": 0, "outcome": False},
    "+ phase-aware": {"rank_weight_lexical": 0, "rank_weight_diversity": 0, "outcome": False},
    "+ hybrid": {"rank_weight_diversity": 0, "outcome": False},
    "+ diversity": {"outcome": False},
    "shipped default": {"outcome": True},
}


@dataclass(frozen=True)
class PhaseRow:
    kind: str
    liver: str
    product: str
    topic: str
    text: str


@dataclass(frozen=True)
class Query:
    style: str
    kind: str
    product: str
    topic: str
    text: str

    @property
    def split(self) -> str:
        digit = int(hashlib.sha256((self.style + self.text).encode()).hexdigest()[0], 16)
        return "test" if digit % 2 else "dev"

    def request(self) -> SearchRequest:
        if self.style == "phase":  # a new phase: its speech and its type
            return SearchRequest(speech_text=self.text, phase_type=self.kind, k=K)
        return SearchRequest(query=self.text, k=K)

    def grade(self, p: PhaseRow) -> int:
        """Relevance of a phase (0, 1, 2) from the labels (see the module docstring)."""
        if self.style in ("intent", "phase"):
            if p.kind != self.kind:
                return 0
            if self.product != "-":
                return 2 if p.product == self.product else 1
            if self.topic != "-":
                return 2 if p.topic == self.topic else 1
            return 1
        if p.product != self.product:
            return 0
        return 2 if self.kind in ("-", p.kind) else 1


def _rows(name: str) -> list[list[str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


def load() -> tuple[list[PhaseRow], list[Query]]:
    return [PhaseRow(*r) for r in _rows("phases.tsv")], [Query(*r) for r in _rows("queries.tsv")]


class CachedEmbedder(Embedder):
    """The local model with a file cache, so every configuration and run embeds each text once."""

    def __init__(self, inner: LocalE5Embedder, path: Path) -> None:
        super().__init__()
        self.inner, self.path = inner, path
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self.vectors: dict[str, list[float]] = json.loads(path.read_text()) if path.exists() else {}

    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        keys = [("q:" if is_query else "p:") + t for t in texts]
        missing = [t for t, k in zip(texts, keys, strict=True) if k not in self.vectors]
        if missing:
            fresh = self.inner._embed(missing, is_query=is_query)
            self.vectors.update({("q:" if is_query else "p:") + t: v for t, v in zip(missing, fresh, strict=True)})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.vectors))
        return [self.vectors[k] for k in keys]


def build_store(phases: list[PhaseRow], queries: list[Query], folder: Path) -> KnowledgeStore:
    """An embedded Qdrant with the corpus: the i-th phase of a kind by a liver goes to that
    liver's stream i (so a liver's repeated set phrases land in different streams)."""
    embedder = CachedEmbedder(LocalE5Embedder(), CACHE)
    # Embed every query once up front (one batch is much faster than one text at a time).
    embedder._embed([q.request().text() for q in queries], is_query=True)
    kb = KnowledgeBase(load_settings(qdrant_path=folder, embedding_provider="local"), embedder=embedder)
    streams: dict[str, list[tuple[int, PhaseRow]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for i, p in enumerate(phases):
        n = seen[(p.liver, p.kind)] = seen.get((p.liver, p.kind), -1) + 1
        streams.setdefault(f"{p.liver}_{n}", []).append((i, p))
    for video, members in streams.items():
        liver, number = video.rsplit("_", 1)
        n = int(number)
        record = {
            "video_id": video,
            "liver_id": liver,
            "stream_date": f"2026-0{1 + n % 9}-15",
            "sales": {"gmv": LIVER_GMV[liver] * (1 + 0.25 * n)},
            "phases": [
                {
                    "phase_index": j,
                    "phase_type": p.kind,
                    "speech_text": p.text,
                    "products": [p.product] if p.product != "-" else [],
                }
                for j, (_, p) in enumerate(members)
            ],
        }
        kb.ingest(parse_analysis(record))
    return kb.store


def variant(store: KnowledgeStore, overrides: dict[str, Any]) -> KnowledgeStore:
    settings: Settings = store.settings.model_copy(update={k: v for k, v in overrides.items() if k != "outcome"})
    return KnowledgeStore(store.client, store.embedder, settings)


# --------------------------------------------------------------------- metrics --
@dataclass
class Scores:
    p5: np.ndarray
    mrr: np.ndarray
    ndcg: np.ndarray


def evaluate(ranked: Sequence[Sequence[int]], queries: Sequence[Query], phases: Sequence[PhaseRow]) -> Scores:
    """Per-query P@5, MRR@10 and nDCG@10 of ranked phase indexes."""
    p5, mrr, ndcg = [], [], []
    for order, q in zip(ranked, queries, strict=True):
        grades = [q.grade(phases[i]) for i in order[:K]]
        p5.append(sum(g > 0 for g in grades[:5]) / 5)
        mrr.append(next((1 / (r + 1) for r, g in enumerate(grades) if g > 0), 0.0))
        ideal = sorted((q.grade(p) for p in phases), reverse=True)[:K]
        dcg = sum((2**g - 1) / np.log2(r + 2) for r, g in enumerate(grades))
        idcg = sum((2**g - 1) / np.log2(r + 2) for r, g in enumerate(ideal))
        ndcg.append(dcg / idcg if idcg else 0.0)
    return Scores(np.array(p5), np.array(mrr), np.array(ndcg))


def run_config(
    store: KnowledgeStore, overrides: dict[str, Any], queries: Sequence[Query], index: dict[str, int]
) -> list[list[int]]:
    """Ranked corpus indexes per query through the real search()."""
    configured = variant(store, overrides)
    outcome = overrides.get("outcome", True)
    ranked = []
    for q in queries:
        request = q.request().model_copy(update={"outcome_aware": outcome})
        ranked.append([index[h.speech_text] for h in search(configured, request)])
    return ranked


def paired_ci(diff: np.ndarray, seed: int = 7) -> tuple[float, float]:
    """95 % paired bootstrap interval of the mean per-query difference."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(RESAMPLES, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def table(title: str, results: dict[str, Scores], queries: Sequence[Query]) -> str:
    base = results["raw dense"]
    lines = [
        f"### {title} ({len(queries)} queries)",
        "",
        "| configuration | P@5 | MRR | nDCG@10 | ΔP@5 vs raw [95% CI] | ΔMRR vs raw [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in results.items():
        cells = [name, f"{s.p5.mean():.3f}", f"{s.mrr.mean():.3f}", f"{s.ndcg.mean():.3f}"]
        for metric in ("p5", "mrr"):
            diff = getattr(s, metric) - getattr(base, metric)
            lo, hi = paired_ci(diff)
            cells.append("—" if s is base else f"{diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    for label, key in (("style", lambda q: q.style), ("query kind", lambda q: q.kind)):
        groups = sorted({key(q) for q in queries})
        lines += ["", f"P@5 / MRR / nDCG@10 per {label}:", ""]
        lines.append(
            "| configuration | " + " | ".join(f"{g} ({sum(key(q) == g for q in queries)})" for g in groups) + " |"
        )
        lines.append("|---" * (len(groups) + 1) + "|")
        for name, s in results.items():
            cells = []
            for g in groups:
                m = np.array([key(q) == g for q in queries])
                cells.append(f"{s.p5[m].mean():.2f} / {s.mrr[m].mean():.2f} / {s.ndcg[m].mean():.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ dev-only tools --
def tune(store: KnowledgeStore, dev: list[Query], phases: list[PhaseRow], index: dict[str, int]) -> None:
    """Grid over the weights on DEV; prints the mean of P@5, MRR and nDCG@10 per point."""
    grid = itertools.product((0.5, 1.0, 2.0), (0.1, 0.2, 0.4), (0.005, 0.01), (0.0, 1.0))
    rows = []
    for w_type, w_lex, temp, w_div in grid:
        overrides = {
            "rank_weight_type": w_type,
            "rank_weight_lexical": w_lex,
            "rank_type_temperature": temp,
            "rank_weight_diversity": w_div,
            "outcome": True,
        }
        s = evaluate(run_config(store, overrides, dev, index), dev, phases)
        rows.append(((s.p5.mean() + s.mrr.mean() + s.ndcg.mean()) / 3, s, overrides))
    for mean, s, o in sorted(rows, key=lambda r: -r[0])[:15]:
        print(f"{mean:.3f}  P@5 {s.p5.mean():.3f} MRR {s.mrr.mean():.3f} nDCG {s.ndcg.mean():.3f}  {o}")


def _fugashi() -> Callable[[str], tuple[str, ...]]:
    import fugashi

    tagger = fugashi.Tagger()
    keep = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "代名詞"}

    def terms(text: str) -> tuple[str, ...]:
        words = tagger(text)
        return tuple((w.feature.lemma or w.surface).lower() for w in words if w.feature.pos1 in keep)

    return terms


def _janome() -> Callable[[str], tuple[str, ...]]:
    from janome.tokenizer import Tokenizer

    tokenizer = Tokenizer()
    keep = {"名詞", "動詞", "形容詞", "副詞", "接頭詞"}

    def terms(text: str) -> tuple[str, ...]:
        tokens = tokenizer.tokenize(text)
        return tuple(str(t.base_form).lower() for t in tokens if str(t.part_of_speech).split(",")[0] in keep)

    return terms


def _bigrams(text: str) -> tuple[str, ...]:
    t = "".join(text.lower().split())
    return tuple(t[i : i + 2] for i in range(len(t) - 1))


def analysers(store: KnowledgeStore, dev: list[Query], phases: list[PhaseRow]) -> None:
    """Each tokenizer's BM25 alone (over the whole corpus) and in the shipped fusion, on DEV."""
    import unicodedata

    def normalised(fn: Callable[[str], tuple[str, ...]]) -> Callable[[str], tuple[str, ...]]:
        return lambda text: fn(unicodedata.normalize("NFKC", text))

    candidates: dict[str, Callable[[str], tuple[str, ...]]] = {
        "sudachi (shipped)": lexical.terms,
        "fugashi+unidic-lite": normalised(_fugashi()),
        "janome": normalised(_janome()),
        "char bigrams": normalised(_bigrams),
    }
    embedder = store.embedder
    passages = np.array(embedder.embed_passages([p.text for p in phases]))
    settings = store.settings
    for name, terms in candidates.items():
        docs = [terms(p.text) for p in phases]
        alone, fused = [], []
        for q in dev:
            text = q.request().text()
            lex = lexical.bm25(terms(text), docs)
            best = max(lex) or 1.0
            alone.append(list(np.argsort([-s for s in lex], kind="stable")[:K]))
            dense = ranking.minmax(list(passages @ np.array(embedder.embed_query(text))))
            rel = ranking.relevance(
                dense, [s / best for s in lex], [0.0] * len(phases), w_lexical=settings.rank_weight_lexical, w_type=0
            )
            fused.append(list(np.argsort([-r for r in rel], kind="stable")[:K]))
        a, f = evaluate(alone, dev, phases), evaluate(fused, dev, phases)
        print(
            f"{name:22s} BM25 alone P@5 {a.p5.mean():.3f} MRR {a.mrr.mean():.3f} nDCG {a.ndcg.mean():.3f}"
            f" | dense + {settings.rank_weight_lexical}·BM25 P@5 {f.p5.mean():.3f} MRR {f.mrr.mean():.3f}"
            f" nDCG {f.ndcg.mean():.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tune", action="store_true", help="weight grid on the dev split (never test)")
    parser.add_argument("--analysers", action="store_true", help="tokenizer comparison on the dev split")
    args = parser.parse_args()
    phases, queries = load()
    index = {p.text: i for i, p in enumerate(phases)}
    dev = [q for q in queries if q.split == "dev"]
    test = [q for q in queries if q.split == "test"]
    print(f"{len(phases)} phases; {len(queries)} queries: dev {len(dev)}, test {len(test)}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        store = build_store(phases, queries, Path(folder))
        if args.tune:
            tune(store, dev, phases, index)
            return
        if args.analysers:
            analysers(store, dev, phases)
            return
        for title, split in (("TEST split (never tuned on)", test), ("DEV split (weights chosen here)", dev)):
            results = {name: evaluate(run_config(store, o, split, index), split, phases) for name, o in CONFIGS.items()}
            print(table(title, results, split), end="\n\n")


if __name__ == "__main__":
    main()
