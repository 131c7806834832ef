"""Phase-aware ranking, the lexical signal, diversity and outcome weighting (issue 10).

The store-backed tests run the real search over an embedded Qdrant with the offline
model; the pure ranking functions are also tested on hand-made vectors where the
property is about arithmetic, not about the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rag_core.analysis.record import parse_analysis
from rag_core.base.settings import load_settings
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge import ranking
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.lexical import lexical_scores, terms
from rag_core.knowledge.schemas import SearchFilters, SearchRequest
from rag_core.knowledge.search import PhaseTypeNotFoundError, type_profile

# One text said in two kinds of phase: only the type can tell them apart.
SHARED = "ちょっと待ってね、コメント読みながら次の準備するね"
# One offer said in two streams that sold differently: equally relevant to any query.
OFFER = "今だけ送料無料、二つ買うとさらに10%オフになります"
OPENERS = [  # a liver's set greeting, repeated with small changes in every stream
    "みなさんこんばんは、あおいです。今日も配信に来てくださってありがとうございます",
    "みなさんこんばんは〜あおいです。今日も来てくださってありがとうございます",
    "皆さんこんばんは、あおいです！今日も配信に来てくれてありがとうございます",
]
OTHERS = [
    ("opening", "どうもー！けんたやで！今日もぎょうさん来てくれてありがとうな"),
    ("opening", "Hey guys, welcome back to the stream, so happy to see you tonight"),
    ("closing", "今日も最後まで見てくれてありがとう！また明日の夜8時に会いましょう、おやすみなさい"),
    ("closing", "ほな今日はここまで！次は土曜の夜やで、また来てや〜"),
    ("closing", "That's it for tonight, thanks so much for watching. See you next week"),
    ("price_explanation", "気になるお値段ですが、通常5980円のところ今日は3980円です"),
    ("price_explanation", "ほたて1キロ、普通は6000円するやつが今日は4480円や"),
    ("product_demo", "このモイストリペアを手の甲にのせると、すーっと伸びてしっとりします"),
    ("product_demo", "北海道のほたて、お刺身でいってみるで…甘っ！ぷりっぷりや"),
]


def record(video: str, gmv: float, phases: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "video_id": video,
        "liver_id": video.split("_")[0],
        "stream_date": "2026-02-01",
        "sales": {"gmv": gmv},
        "phases": [{"phase_index": i, "phase_type": t, "speech_text": s} for i, (t, s) in enumerate(phases)],
    }


RECORDS = [
    record("aoi_1", 900_000, [("opening", OPENERS[0]), ("idle", SHARED)]),
    # "greeting" is an alias of opening
    record("aoi_2", 300_000, [("opening", OPENERS[1]), ("greeting", SHARED), ("price_explanation", OFFER)]),
    record("aoi_3", 600_000, [("opening", OPENERS[2]), ("price_explanation", OFFER)]),
    record("mix_1", 500_000, OTHERS),
]


def make_kb(tmp_path_factory: pytest.TempPathFactory, embedder: LocalE5Embedder, **settings: Any) -> KnowledgeBase:
    kb = KnowledgeBase(
        load_settings(qdrant_path=tmp_path_factory.mktemp("qdrant"), embedding_provider="local", **settings),
        embedder=embedder,
    )
    for r in RECORDS:
        kb.ingest(parse_analysis(r))
    return kb


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> KnowledgeBase:
    return make_kb(tmp_path_factory, local_embedder)


@pytest.fixture(scope="module")
def kb_no_diversity(tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> KnowledgeBase:
    return make_kb(tmp_path_factory, local_embedder, rank_weight_diversity=0)


def test_a_typed_query_prefers_same_type_phases_at_equal_similarity(kb: KnowledgeBase) -> None:
    for phase_type, expected in [("idle", ("aoi_1", "idle")), ("opening", ("aoi_2", "greeting"))]:
        hits = kb.search(SearchRequest(speech_text=SHARED, phase_type=phase_type, k=2, outcome_aware=False))
        assert {h.speech_text for h in hits[:1]} == {SHARED}
        assert (hits[0].video_id, hits[0].phase_type) == expected, phase_type
    # outside the vocabulary, spelled differently: mapped through the alias table
    hits = kb.search(SearchRequest(speech_text=SHARED, phase_type="Greeting", k=1, outcome_aware=False))
    assert hits[0].phase_type == "greeting"


def test_an_untyped_query_gets_its_type_inferred_from_the_stored_phases(kb: KnowledgeBase) -> None:
    query = "今日はここまで、また来週ね"
    vector = np.asarray(kb.embedder.embed_query(query))
    profile = type_profile(kb.store)
    assert set(profile.centroids(None)) == {"opening", "idle", "closing", "price_explanation", "product_demo"}
    inferred = ranking.query_types(None, vector, profile.centroids(None), kb.settings.rank_type_temperature)
    assert max(inferred, key=lambda t: inferred[t]) == "closing"
    assert sum(inferred.values()) == pytest.approx(1.0)
    assert inferred["closing"] > 0.5 and inferred["product_demo"] < 0.1
    hits = kb.search(SearchRequest(query=query, k=2, outcome_aware=False))
    assert [h.phase_type for h in hits] == ["closing", "closing"]


def test_a_brands_search_is_the_same_whatever_other_brands_store(
    tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder
) -> None:
    """Type inference and outcome scaling use the caller's own brand's phases only: another
    brand's writes (other types, a far higher GMV) leave a scoped search's hits and scores as
    they were, so nothing in them tells a brand that others write."""
    kb = KnowledgeBase(
        load_settings(qdrant_path=tmp_path_factory.mktemp("qdrant"), embedding_provider="local"),
        embedder=local_embedder,
    )
    for r in RECORDS[:3]:
        kb.ingest(parse_analysis(r), brand_id=7)
    queries = [SearchRequest(query=q, k=5) for q in ("今日はここまで、また来週ね", "お値段はいくら？", SHARED)]
    before = [[h.model_dump() for h in kb.search(q, brand_id=7)] for q in queries]
    kb.ingest(parse_analysis({**RECORDS[3], "sales": {"gmv": 90_000_000}}), brand_id=8)
    kb.ingest(parse_analysis({**RECORDS[0], "sales": {"gmv": 80_000_000}}), brand_id=8)  # the same video id too
    assert [[h.model_dump() for h in kb.search(q, brand_id=7)] for q in queries] == before


def test_a_filter_on_an_absent_type_names_the_types_present(kb: KnowledgeBase) -> None:
    with pytest.raises(PhaseTypeNotFoundError) as caught:
        kb.search(SearchRequest(query="質問に答える", filters=SearchFilters(phase_type="qna")))
    message = str(caught.value)
    assert "'qna'" in message and "types present:" in message
    assert "closing (3)" in message and "opening (6)" in message and "idle (1)" in message
    # a filter on the canonical name finds every stored spelling of it
    hits = kb.search(SearchRequest(query=SHARED, k=20, filters=SearchFilters(phase_type="opening")))
    assert {h.phase_type for h in hits} == {"opening", "greeting"} and len(hits) == 6


def test_near_duplicates_collapse(kb: KnowledgeBase, kb_no_diversity: KnowledgeBase) -> None:
    request = SearchRequest(query=OPENERS[0], k=3, outcome_aware=False)
    crowded = kb_no_diversity.search(request)
    assert {h.speech_text for h in crowded} == set(OPENERS), "without diversity one greeting fills the top 3"
    varied = kb.search(request)
    assert sum(h.speech_text in OPENERS for h in varied) == 1
    assert varied[0].speech_text == OPENERS[0]
    assert all(ranking.canonical_type(h.phase_type) == "opening" for h in varied), "the copies give way to openings"


def test_outcome_weighting_orders_equally_relevant_phases_by_sales(
    kb: KnowledgeBase, kb_no_diversity: KnowledgeBase
) -> None:
    by_sales = kb_no_diversity.search(SearchRequest(query=OFFER, k=2))
    assert [h.video_id for h in by_sales] == ["aoi_3", "aoi_2"], "600k before 300k"
    assert by_sales[0].similarity == pytest.approx(by_sales[1].similarity)
    assert by_sales[0].score > by_sales[1].score
    plain = kb_no_diversity.search(SearchRequest(query=OFFER, k=2, outcome_aware=False))
    assert plain[0].score == plain[1].score, "without outcome weighting they tie"
    # relevance still leads: the type a request asks for beats a 3x better seller of another type
    typed = kb_no_diversity.search(SearchRequest(speech_text=SHARED, phase_type="opening", k=2))
    assert [h.video_id for h in typed] == ["aoi_2", "aoi_1"]
    # with diversity on, the copy that stands for both is the better seller's
    assert [h.video_id for h in kb.search(SearchRequest(query=OFFER, k=2))][:1] == ["aoi_3"]


# ----------------------------------------------------------------- pure parts --
@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("product_demo", "product_demo"),
        ("Q&A", "qna"),
        ("CTA", "call_to_action"),
        ("greeting", "opening"),
        ("商品紹介", "product_demo"),
        ("price-reveal", "price_explanation"),
        ("Giveaway Time", "giveaway_time"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_phase_types_map_onto_the_vocabulary(given: str | None, canonical: str) -> None:
    assert ranking.canonical_type(given) == canonical


def test_every_alias_maps_into_the_vocabulary() -> None:
    assert set(ranking.ALIASES.values()) <= set(ranking.VOCABULARY)


def test_mmr_penalises_only_near_duplicates() -> None:
    a = np.array([1.0, 0.0, 0.0])
    near = np.array([0.99, 0.14, 0.0])  # cosine 0.99 to a
    related = np.array([0.9, 0.0, 0.436])  # cosine 0.9 to a: similar, not a copy
    vectors = np.stack([a, near, related])
    order = ranking.diversify([1.0, 0.95, 0.9], vectors, weight=1.0, threshold=0.96)
    assert order == [0, 2, 1]
    assert ranking.diversify([1.0, 0.95, 0.9], vectors, weight=0.0, threshold=0.96) == [0, 1, 2]


def test_relevance_is_dense_dominant() -> None:
    # the best meaning match with no shared word beats a word match that means less
    dense, lexical = [1.0, 0.6], [0.0, 1.0]
    fused = ranking.relevance(dense, lexical, [1.0, 1.0], w_lexical=0.2, w_type=0.5)
    assert fused[0] > fused[1]


def test_lexical_terms_fold_spelling_variants_and_drop_particles() -> None:
    assert terms("ほたて") == terms("ホタテ") == terms("帆立")
    assert "の" not in terms("ほたての値段") and "えっと" not in terms("えっと、値段")
    assert terms("SoundPiece　３９８０円") == ("soundpiece", "3980", "円")
    scores = lexical_scores("ホタテのお値段", ["帆立1キロ4480円、お値段も送料込み", "イヤホンの音質", "こんばんは"])
    assert scores[0] == 1.0 and scores[2] == 0.0


def test_terms_are_safe_from_many_threads_at_once() -> None:
    """Searches run on the API's thread pool; Sudachi refuses a tokenizer shared by threads."""
    from concurrent.futures import ThreadPoolExecutor

    from rag_core.knowledge.lexical import terms

    texts = [f"今日は{i}番目の加湿器を紹介します、ほたてのお値段は{i}円" for i in range(400)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(terms, texts))
    assert all("加湿器" in r for r in results)
