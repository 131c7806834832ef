"""Which sales field a dashboard label names, from the one lexicon file ``lexicon.json``.

Real dashboards word the same metric in many ways (``注文数``, ``総注文数``,
``Paid orders``, ``成交订单数``), so a label is not looked up as an exact string.
It matches a field's core term when it *contains* the term and what is left
around it is made of qualifiers (``総``, ``LIVE``, ``数``, ``(円)`` - the shared
ones plus those of the field's kind) or of the field's other core terms
(``総売上(GMV)``). Several fields can match one label (``SKU注文数`` contains
``注文数``; ``最大同時視聴者数`` contains ``視聴者数``): the longest core term wins,
which is the most specific field, and the lexicon's ``other`` metrics (SKU
orders, CTOR, customers) win that way too and are then ignored, so they are
never stored as the field they resemble.

OCR misreads a character now and then, so when no core term is contained a
label may still match one at a small edit distance (none for 2-character
terms, one up to 7, two beyond); a fuzzy match never beats a contained term,
and a contained term's fuzzy runner-ups are kept only when no shorter than it
(``クリック率`` misread as ``クリック数``: the value's kind decides).

The Azure vision reader puts the same terms into its instructions, so both
providers name fields alike.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

LEXICON_PATH = Path(__file__).with_name("lexicon.json")
OTHER = "other"  # metrics we do not store; a label that names one maps to no field
LANGUAGES = ("ja", "en", "zh")
_MAX_CORES = 12  # fuzzy compares per label: a label has few qualifiers
_MAX_LABEL = 40  # normalised characters; longer text is a sentence, not a label
# Folded on both sides before labels are compared: look-alikes the jpn model swaps, small kana,
# and the handakuten kana as their dakuten twins (ピ read as ビ: the small ring and the two ticks
# are a few pixels at label size, and no two terms differ by them alone).
_CONFUSABLE = str.maketrans("一口力夕卜二工ァィゥェォッャュョパピプペポ", "ーロカタトニエアイウエオツヤユヨバビブベボ")
_IGNORED = re.compile(r"[\s()（）\[\]【】「」:：・/／\-－‐.。、]")
_LONG_VOWELS = re.compile(r"ー{2,}")  # "ピーーク": a long-vowel mark read twice


def normalise(text: str) -> str:
    """A label as compared: NFKC, no spaces, brackets or punctuation, look-alikes folded, upper case."""
    folded = _IGNORED.sub("", unicodedata.normalize("NFKC", text)).translate(_CONFUSABLE).upper()
    return _LONG_VOWELS.sub("ー", folded)


@dataclass(frozen=True)
class Term:
    """One core term of the lexicon: the field it names, as written, normalised, its language."""

    field: str
    text: str
    norm: str
    language: str


def _allowed_edits(term: str) -> int:
    return 0 if len(term) <= 2 else 1 if len(term) <= 7 else 2


class Vocabulary:
    """The core terms and qualifiers of one group of fields (sales metrics, or product columns)."""

    def __init__(self, groups: dict[str, dict[str, Any]], qualifiers: dict[str, list[str]]) -> None:
        self.terms = tuple(
            Term(field, text, normalise(text), language)
            for field, group in groups.items()
            for language in LANGUAGES
            for text in group.get(language, ())
        )
        self.kinds = {field: str(group["kind"]) for field, group in groups.items()}
        self._by_norm = {term.norm: term for term in self.terms}
        self._tokens: dict[str, tuple[str, ...]] = {}
        for field, kind in self.kinds.items():
            words = [*qualifiers["any"], *qualifiers.get(kind, ())]
            cores = [t.norm for t in self.terms if t.field == field]
            self._tokens[field] = tuple(sorted({normalise(w) for w in words} | set(cores), key=len, reverse=True))
        all_cores = {t.norm for t in self.terms}
        every = {w for tokens in self._tokens.values() for w in tokens} - all_cores
        self._qualifiers = tuple(sorted(every, key=len, reverse=True))  # cut off the ends before a fuzzy compare
        self._qualifier_tokens = {
            field: tuple(t for t in tokens if t not in all_cores) for field, tokens in self._tokens.items()
        }
        self._inner = tuple(w for w in (normalise(q) for q in qualifiers["any"]) if len(w) >= 3)

    def explained(self, part: str, field: str) -> bool:
        """Whether ``part`` (normalised) is made only of the field's qualifiers and core terms, or
        is one qualifier of 3+ characters with a character misread (``成約金額(JPY)`` read as
        ``成約金額UPY)``): a label's core term must not be lost to its qualifier's misread, after
        which only a fuzzy match of a shorter piece (``成約`` as ``成約率``) was left."""
        if _explained(part, self._tokens[field]):
            return True
        return len(part) >= 3 and any(
            len(token) >= 3 and Levenshtein.distance(part, token) <= 1 for token in self._qualifier_tokens[field]
        )

    def match(self, text: str) -> list[str]:
        """The fields the label ``text`` may name, best first; [] when none (or an ``other`` metric)."""
        s = normalise(text)
        if not s or len(s) > _MAX_LABEL or any(ch.isdigit() for ch in s):
            return []
        contained = [term for form in self._forms(s) for term in self._contained(form)]
        best = max(contained, key=lambda t: len(t.norm), default=None)
        if best is not None and best.field == OTHER:
            return []
        ranked: dict[str, tuple[int, int]] = {best.field: (0, -len(best.norm))} if best else {}
        near = self._fuzzy(s)
        for term, distance in near:
            if not 0 < distance <= _allowed_edits(term.norm):
                continue
            if best is not None and len(term.norm) != len(best.norm):
                continue  # beside a contained term only a same-length misread (率/数) is kept
            rank = (distance, -len(term.norm))
            if term.field not in ranked or rank < ranked[term.field]:
                ranked[term.field] = rank
        fields = sorted(ranked, key=ranked.__getitem__)
        if best is None and fields:
            closest = ranked[fields[0]][0]
            if any(t.field != fields[0] and d <= closest for t, d in near):
                return []  # another field's term is as near, if beyond its allowance: edits decide nothing
        if fields and fields[0] == OTHER:
            return []  # closest to a metric we ignore
        return [f for f in fields if f != OTHER]

    def _forms(self, s: str) -> set[str]:
        """``s``, and ``s`` without the shared qualifiers of 3+ characters inside it (``Peak LIVE viewers``)."""
        inner = s
        for word in self._inner:
            inner = inner.replace(word, "")
        return {s, inner} if len(inner) >= 2 else {s}

    def _contained(self, s: str) -> list[Term]:
        """Terms inside ``s`` with only qualifiers or the field's other terms around them."""
        return [
            term
            for term in self.terms
            if (at := s.find(term.norm)) >= 0
            and self.explained(s[:at], term.field)
            and self.explained(s[at + len(term.norm) :], term.field)
        ]

    def _fuzzy(self, s: str) -> list[tuple[Term, int]]:
        """Terms within two edits of ``s`` or of ``s`` without qualifiers at either end, each at
        its least distance (whether a term's length allows that many is the caller's check)."""
        out: dict[str, tuple[Term, int]] = {}
        for core in _cores(s, self._qualifiers):
            for norm, distance, _ in process.extract(
                core, list(self._by_norm), scorer=Levenshtein.distance, score_cutoff=2, limit=None
            ):
                if norm not in out or distance < out[norm][1]:
                    out[norm] = (self._by_norm[norm], int(distance))
        return list(out.values())


@cache
def _explained(part: str, tokens: tuple[str, ...]) -> bool:
    if not part:
        return True
    return any(part.startswith(token) and _explained(part[len(token) :], tokens) for token in tokens if token)


def _cores(s: str, qualifiers: tuple[str, ...]) -> set[str]:
    """``s`` and ``s`` with one or more qualifiers cut off its start or end (at least 2 characters left)."""
    out = {s}
    frontier = [s]
    while frontier and len(out) < _MAX_CORES:
        current = frontier.pop()
        for q in qualifiers:
            for cut in (
                current[len(q) :] if current.startswith(q) else "",
                current[: -len(q)] if current.endswith(q) else "",
            ):
                if len(cut) >= 2 and cut not in out:
                    out.add(cut)
                    frontier.append(cut)
    return out


@cache
def _lexicon() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(LEXICON_PATH.read_text("utf-8"))
    return data


@cache
def sales_labels() -> Vocabulary:
    """The sales metrics' labels (``fields`` plus the ignored ``other`` metrics)."""
    data = _lexicon()
    return Vocabulary({**data["fields"], OTHER: data["other"]}, data["qualifiers"])


@cache
def product_columns() -> Vocabulary:
    """The product table's column headers."""
    data = _lexicon()
    return Vocabulary(data["product_columns"], data["qualifiers"])


def terms_by_field() -> dict[str, list[str]]:
    """Each sales field's core terms as written (all languages), for instructions to a vision model."""
    out: dict[str, list[str]] = {}
    for term in sales_labels().terms:
        out.setdefault(term.field, []).append(term.text)
    return out
