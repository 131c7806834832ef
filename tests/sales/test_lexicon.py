"""The label lexicon (rag_core/sales/lexicon.json): every entry, qualifiers, and the most-specific-field rule."""

from __future__ import annotations

import pytest

from rag_core.sales.fields import SALES_FIELDS
from rag_core.sales.lexicon import OTHER, Term, normalise, product_columns, sales_labels, terms_by_field

SALES_TERMS = sales_labels().terms
COLUMN_TERMS = product_columns().terms


def _id(term: Term) -> str:
    return f"{term.field}:{term.text}"


@pytest.mark.parametrize("term", SALES_TERMS, ids=_id)
def test_each_entry_names_its_field(term: Term) -> None:
    expected = [] if term.field == OTHER else [term.field]
    assert sales_labels().match(term.text)[:1] == expected


@pytest.mark.parametrize("term", [t for t in SALES_TERMS if t.field != OTHER], ids=_id)
def test_each_entry_with_qualifiers_around_it(term: Term) -> None:
    """A shared qualifier before (総 / Total) and brackets after still name the field."""
    prefix = "総" if term.language == "ja" else "Total " if term.language == "en" else "累计"
    assert sales_labels().match(f"{prefix}{term.text}")[:1] == [term.field]
    assert sales_labels().match(f"{term.text}（LIVE）")[:1] == [term.field]


@pytest.mark.parametrize("term", COLUMN_TERMS, ids=_id)
def test_each_product_column_entry(term: Term) -> None:
    assert product_columns().match(term.text)[:1] == [term.field]


def test_the_lexicon_is_consistent() -> None:
    fields = {t.field for t in SALES_TERMS} - {OTHER}
    assert fields <= set(SALES_FIELDS)
    assert set(SALES_FIELDS) <= fields  # every field can be read from a screenshot
    norms = [t.norm for t in SALES_TERMS]
    assert len(norms) == len(set(norms)), "a term listed under two fields"
    for field in fields:
        assert {t.language for t in SALES_TERMS if t.field == field} == {"ja", "en", "zh"}, field
    assert terms_by_field()["gmv"][:2] == ["GMV", "売上"]


@pytest.mark.parametrize(
    ("label", "field"),
    [
        # the wordings: qualifiers around the core term
        ("総売上(GMV)", "gmv"),
        ("Revenue", "gmv"),
        ("成交金额", "gmv"),
        ("総注文数", "orders"),
        ("Paid orders", "orders"),
        ("注文数(件)", "orders"),
        ("総視聴者数", "viewers"),
        ("Unique viewers", "viewers"),
        ("观看次数", "viewers"),
        ("累計視聴者数", "viewers"),
        ("最大同時視聴者数", "peak_viewers"),
        ("Peak concurrent viewers", "peak_viewers"),
        ("Peak LIVE viewers", "peak_viewers"),
        ("平均視聴時間", "avg_watch_time_sec"),
        ("インプレッション数", "impressions"),
        ("CTR(クリック率)", "ctr"),
        ("Watch GPM", "gpm"),
        ("販売数", "items_sold"),
        ("Items sold", "items_sold"),
        ("商品成交件数", "items_sold"),
        ("コメント率", "comment_rate"),
        ("フォロー率", "follower_ratio"),
        ("LIVE GMV (円)", "gmv"),
        # a misread character still names the field
        ("視聴者敬", "viewers"),
        ("総視聴者敬", "viewers"),
        ("シェエア", "shares"),
    ],
)
def test_wordings_from_real_dashboards(label: str, field: str) -> None:
    assert sales_labels().match(label)[0] == field


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("最大同時視聴者数", "peak_viewers"),  # contains 視聴者数 (viewers)
        ("同時視聴者数", "peak_viewers"),
        ("Peak viewers", "peak_viewers"),  # contains Viewers
        ("商品インプレッション数", "product_impressions"),  # contains インプレッション数
        ("商品成交件数", "items_sold"),  # contains 成交件数, never orders
        ("コメント率", "comment_rate"),  # contains コメント (comments)
    ],
)
def test_the_most_specific_field_wins(label: str, field: str) -> None:
    assert sales_labels().match(label)[0] == field


@pytest.mark.parametrize(
    "label",
    [
        "SKU注文数",  # contains 注文数, but SKU orders are not orders
        "SKU orders",
        "直播SKU订单数",
        "CTOR",  # one edit from CTR: the longer ignored term fits exactly
        "Customers",
        "成交用户",
        "客単価",
        "キャンセル注文数",  # a qualifier the lexicon does not know: no field rather than a guess
        "新規視聴者数",
        "Total watch time",
        "LIVEデータ分析",
        "前回比 +12.3%",
        "商品別データ",
    ],
)
def test_labels_of_other_metrics_name_no_field(label: str) -> None:
    assert sales_labels().match(label) == []


def test_a_misread_neighbour_is_kept_as_runner_up() -> None:
    """クリック率 misread as クリック数: the value's kind (a % or a count) decides between the two."""
    assert sales_labels().match("クリック数") == ["product_clicks", "ctr"]
    assert sales_labels().match("クリツク率")[0] == "ctr"


def test_normalise_folds_width_brackets_and_case() -> None:
    assert normalise("ＧＭＶ（円）") == normalise("gmv(円)") == "GMV円"
    assert normalise("Avg. viewing-duration") == "AVGVIEWINGDURATION"


def test_a_misread_qualifier_does_not_lose_the_core_term() -> None:
    """ "成約金額(JPY)" read as "成約金額UPY)": still GMV, not CVR by a fuzzy "成約" -> "成約率"."""
    assert sales_labels().match("成約金額UPY)") == ["gmv"]
    assert sales_labels().match("成約") == ["cvr"]  # alone, the fuzzy match stands
