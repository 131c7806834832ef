"""Generate the sample set of analysed live streams in ``samples/``.

Why this exists: the knowledge base needs a realistic corpus to backfill, to
demo retrieval on and to test against, and real stream analyses cannot be
committed. The samples are synthetic but shaped like the real thing: Japanese
livers with their own categories and skill, 6–12 phases per stream with spoken
Japanese, visual context and an analyst's note, and a sales outcome that is
*caused by* the phases (demo time, an explicit price reveal, an urgent call to
action raise conversion; idle time lowers it), so "what did the streams that
sold well do here?" has an answer in the data.

About 10 % of the files are written with the legacy wire names (``id``,
``sales_data`` with ``"￥150,000"`` / ``"1.2万"`` strings, ``visual_context``,
``report.phases`` …) to prove that the backfill reads past files, and two
deliberately broken files go to ``invalid/`` for the backfill to report and skip.

Everything comes from one seeded ``random.Random``, so a run reproduces the
committed files byte for byte (tests/analysis/test_record.py checks this). Files are
written, never deleted: regenerate into an empty folder when the count shrinks.

Usage: ``python scripts/generate_samples.py --out samples/ --count 72``
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20260101
DEFAULT_COUNT = 72
FIRST_DAY = dt.date(2026, 1, 5)
LAST_DAY = dt.date(2026, 9, 30)
SCREEN_SAMPLE_EVERY_SEC = 30
LEGACY_EVERY = 10  # one stream in ten is written with the legacy names


@dataclass(frozen=True)
class Product:
    """A catalogue item: list price, the live price, and what the liver says and shows about it."""

    name: str
    list_price: int
    live_price: int
    demo_lines: tuple[str, str]
    demo_visual: str
    question: str
    answer: str


@dataclass(frozen=True)
class Liver:
    """A streamer. ``skill`` (0–1) drives both how they run a stream and a base conversion level."""

    name: str
    slug: str
    brand_id: int
    category: str
    skill: float
    base_viewers: int

    @property
    def liver_id(self) -> str:
        return f"liver_{self.slug}"


BRAND_EMAILS = {
    101: "analyst@beauty-lab.example.jp",
    102: "analyst@style-gadget.example.jp",
    103: "analyst@gourmet-kitchen.example.jp",
}

LIVERS: tuple[Liver, ...] = (
    Liver("さくら", "sakura", 101, "cosmetics", 0.88, 26000),
    Liver("ゆい", "yui", 101, "skincare", 0.70, 17000),
    Liver("あおい", "aoi", 101, "cosmetics", 0.42, 9000),
    Liver("みお", "mio", 102, "apparel", 0.76, 21000),
    Liver("ひなた", "hinata", 102, "apparel", 0.38, 7000),
    Liver("はると", "haruto", 102, "gadgets", 0.60, 14000),
    Liver("りな", "rina", 103, "food", 0.66, 15000),
    Liver("けんた", "kenta", 103, "food", 0.48, 11000),
    Liver("そうた", "sota", 103, "kitchen", 0.55, 10000),
)

CATEGORY_WORDS = {
    "cosmetics": "コスメ",
    "skincare": "スキンケア",
    "apparel": "新作のお洋服",
    "food": "お取り寄せグルメ",
    "gadgets": "便利ガジェット",
    "kitchen": "キッチングッズ",
}

CATALOG: dict[str, tuple[Product, ...]] = {
    "cosmetics": (
        Product(
            "ツヤ発色リップティント",
            1980,
            1580,
            (
                "見てください、この発色！一度塗りでこのツヤ感です。",
                "マスクにもつきにくいので、お仕事の日でも安心なんですよ。",
            ),
            "手の甲に3色のリップティントを塗り比べ、カメラに近づけて発色とツヤを見せている。",
            "イエベでも似合う色ありますか？",
            "イエベさんにはコーラルの02番がおすすめです、肌なじみがすごくいいですよ。",
        ),
        Product(
            "カバー力クッションファンデ",
            3300,
            2640,
            (
                "半顔だけ塗ってみますね。ほら、クマもシミもこれ一回でほぼ消えちゃいます。",
                "時間が経ってもヨレにくいので、朝塗ったら夕方までこのままです。",
            ),
            "顔の右半分だけにファンデーションを塗り、塗布前後の差を並べて映している。",
            "乾燥肌でも粉浮きしませんか？",
            "保湿成分が入ってるので、乾燥肌の私でも粉浮きしてないです。",
        ),
        Product(
            "9色アイシャドウパレット",
            2860,
            2200,
            (
                "上段はマットで、下段はラメが入ってます。指でも簡単にグラデーションが作れますよ。",
                "このピンクブラウン、一番人気の色なんです。",
            ),
            "パレットを開いてアップで映し、まぶたに2色を重ねてグラデーションを作っている。",
            "ラメは落ちやすいですか？",
            "密着ラメなので、指で触っても飛び散りにくいです。",
        ),
        Product(
            "ロング&カールマスカラ",
            1650,
            1320,
            ("片目だけ塗ってみます…見てください、この長さ！", "お湯で落とせるタイプなので、クレンジングも楽ちんです。"),
            "片目だけにマスカラを塗り、左右のまつ毛の長さの違いをアップで比べている。",
            "下まつ毛にも使えますか？",
            "ブラシが細いので、下まつ毛にもすごく塗りやすいですよ。",
        ),
    ),
    "skincare": (
        Product(
            "ビタミンC美容液 30ml",
            4400,
            3520,
            (
                "テクスチャーはこんな感じで、とろっとしてるのにすぐなじみます。",
                "毎晩使って、2週間くらいで毛穴が目立たなくなりました。",
            ),
            "スポイトで美容液を手の甲に垂らし、指で伸ばしてなじむ様子を見せている。",
            "敏感肌でも使えますか？",
            "パッチテスト済みで香料も入ってないので、敏感肌の方にも使っていただけます。",
        ),
        Product(
            "高保湿化粧水 200ml",
            2200,
            1760,
            (
                "コットンにたっぷり出して…ほら、肌がもちもちになるのわかりますか？",
                "ベタつかないので、夏でも使いやすいです。",
            ),
            "化粧水をコットンに含ませて頬にパッティングし、肌のツヤをアップで映している。",
            "男性でも使えますか？",
            "もちろんです、うちの旦那も髭剃りのあとに使ってます。",
        ),
        Product(
            "トーンアップ日焼け止め SPF50+",
            1760,
            1480,
            (
                "白浮きしないで、ワントーン明るくなるんです。下地いらずですよ。",
                "汗や水にも強いので、レジャーにもぴったりです。",
            ),
            "腕の片側に日焼け止めを塗り、塗っていない側と色味の違いを見せている。",
            "石けんで落ちますか？",
            "はい、石けんで落とせるのでクレンジングいらずです。",
        ),
        Product(
            "集中ケアシートマスク 10枚入り",
            1980,
            1490,
            ("一枚がすごく分厚くて、美容液がひたひたなんです。", "10分貼るだけで、翌朝のメイクのりが全然違います。"),
            "シートマスクを袋から取り出し、垂れるほどの美容液量を見せてから顔に貼っている。",
            "毎日使っても大丈夫ですか？",
            "毎日使っていただけます。10枚入りなので集中ケアにちょうどいいです。",
        ),
    ),
    "apparel": (
        Product(
            "ゆったりニットカーディガン",
            5990,
            4790,
            (
                "着てみますね。肩が落ちるデザインなので、体型カバーにもなります。",
                "チクチクしない素材なので、素肌に着ても大丈夫です。",
            ),
            "カーディガンを羽織ってカメラから離れ、全身と後ろ姿を回って見せている。",
            "身長150cmでも大きすぎませんか？",
            "私153cmで今着てますけど、お尻が隠れるくらいの丈でちょうどいいですよ。",
        ),
        Product(
            "センタープレス ワイドパンツ",
            4490,
            3590,
            (
                "ウエストがゴムなのに、前から見るとちゃんとしたスラックスに見えるんです。",
                "シワになりにくいので、出張にも持っていけます。",
            ),
            "ワイドパンツを着用して歩き、裾の揺れとウエストのゴム部分を映している。",
            "洗濯機で洗えますか？",
            "ネットに入れれば洗濯機で洗えます、アイロンもいらないです。",
        ),
        Product(
            "花柄ティアードワンピース",
            6990,
            5590,
            (
                "この花柄、春っぽくてかわいくないですか？くるっと回ると裾がふわっとします。",
                "一枚でコーデが決まるので、朝すごく楽なんです。",
            ),
            "ワンピースを着てくるりと回り、裾の広がりと生地の透け感を確認している。",
            "透けませんか？",
            "裏地がついてるので透けないです、安心してください。",
        ),
        Product(
            "撥水ナイロントートバッグ",
            3290,
            2630,
            ("A4もノートPCも入ります。中にポケットが5つあるんです。", "水をかけてみますね…ほら、弾いてます！"),
            "トートバッグにノートPCとペットボトルを入れ、表面に水をかけて撥水性を見せている。",
            "カラーは何色ありますか？",
            "ブラック、ベージュ、カーキの3色です。一番人気はベージュです。",
        ),
    ),
    "food": (
        Product(
            "博多辛子明太子 300g",
            3480,
            2980,
            (
                "炊きたてのご飯にのせて…いただきます！うん、プチプチで最高です。",
                "切れ子なのでお値打ちなんですけど、味は一本ものと一緒です。",
            ),
            "明太子を炊きたてご飯にのせ、湯気と粒感をアップで映してから試食している。",
            "冷凍で届きますか？",
            "冷凍便でお届けします。冷凍庫で1ヶ月保存できますよ。",
        ),
        Product(
            "訳ありバームクーヘン 1kg",
            2480,
            1980,
            (
                "見てくださいこのボリューム！切れ端なんですけど、しっとり感はそのままです。",
                "レンジで10秒温めると、バターの香りがふわっとします。",
            ),
            "箱いっぱいのバームクーヘンの切れ端を見せ、1切れを割って断面を映している。",
            "賞味期限はどれくらいですか？",
            "常温で製造から30日です。小分けにして冷凍もできます。",
        ),
        Product(
            "国産ドライフルーツ 5種アソート",
            1780,
            1480,
            ("砂糖不使用なので、果物そのままの甘さなんです。", "いちじく食べてみますね…ねっとりしてて美味しい！"),
            "5種類のドライフルーツを皿に並べ、いちじくを割って中を見せている。",
            "子どもでも食べられますか？",
            "添加物なしなので、お子さんのおやつにもおすすめです。",
        ),
        Product(
            "黒毛和牛ハンバーグ 6個",
            4980,
            3980,
            ("焼いていきます。ほら、肉汁がすごい出てきました。", "一個150gあるので、食べごたえ十分です。"),
            "フライパンでハンバーグを焼き、割って肉汁があふれる様子をアップで見せている。",
            "ソースは付いてますか？",
            "デミグラスソースが6袋付いてます。温めるだけで食べられますよ。",
        ),
    ),
    "gadgets": (
        Product(
            "ノイキャン ワイヤレスイヤホン",
            4980,
            3980,
            (
                "今ノイキャンをオンにしました…周りの音がほぼ聞こえないです。",
                "片耳だけでも使えるので、オンライン会議にも便利です。",
            ),
            "イヤホンを装着し、ケースの開閉とノイズキャンセリングの切り替え操作を映している。",
            "iPhoneでもAndroidでも使えますか？",
            "Bluetooth 5.3なので、どちらでも使えます。",
        ),
        Product(
            "10000mAh 薄型モバイルバッテリー",
            3480,
            2780,
            ("スマホと並べるとこの薄さです。ポケットにも入ります。", "スマホが約2回フル充電できます。"),
            "モバイルバッテリーをスマホと重ねて厚みを比べ、充電中の表示ランプを映している。",
            "飛行機に持ち込めますか？",
            "10000mAhなので機内持ち込みできますよ。",
        ),
        Product(
            "リモコン付きスマホ三脚",
            2480,
            1980,
            (
                "最大160cmまで伸びます。リモコンで離れたところからシャッターが切れます。",
                "脚をたたむと自撮り棒にもなるんです。",
            ),
            "三脚を最大まで伸ばし、リモコンで撮影してから自撮り棒に変形させている。",
            "重さはどれくらいですか？",
            "約300gなので、旅行にも気軽に持っていけます。",
        ),
        Product(
            "首掛けハンディファン",
            2980,
            2380,
            (
                "首に掛けるだけで顔まわりに風が来ます。羽根がないので髪が巻き込まれません。",
                "風量は3段階で、一番弱いのはほぼ無音です。",
            ),
            "ネックファンを首に掛け、髪がなびく様子と風量の切り替えを見せている。",
            "何時間使えますか？",
            "弱モードで約12時間使えます。USB-Cで充電できます。",
        ),
    ),
    "kitchen": (
        Product(
            "焦げつかない多層フライパン 26cm",
            5480,
            4380,
            ("油をひかずに目玉焼きを焼いてみます…見てください、するっと滑ります！", "IHでもガスでも使えます。"),
            "油なしで目玉焼きを焼き、フライパンを傾けて卵が滑る様子を見せている。",
            "食洗機で洗えますか？",
            "食洗機対応です。コーティングも5年保証がついてます。",
        ),
        Product(
            "ガラス保存容器 5点セット",
            3280,
            2480,
            (
                "このままレンジもオーブンもOKなんです。",
                "フタのパッキンがしっかりしてるので、汁物を入れても漏れません。",
            ),
            "保存容器にスープを入れて逆さにし、漏れないことを見せている。",
            "冷凍もできますか？",
            "はい、冷凍からそのままレンジで温められます。",
        ),
        Product(
            "電動ミル ソルト&ペッパー",
            2980,
            2380,
            (
                "ボタンを押すだけで挽けます。片手で使えるのがいいんです。",
                "LEDライトがついてて、どれだけかかったか見えるんですよ。",
            ),
            "片手で電動ミルのボタンを押し、ライトで照らしながらステーキに胡椒を挽いている。",
            "電池式ですか？",
            "単4電池4本です。半年くらいもちますよ。",
        ),
        Product(
            "コードレスハンドブレンダー",
            6980,
            5580,
            (
                "コードレスなのでどこでも使えます。スムージー作ってみますね。",
                "10秒でバナナも氷もなめらかになりました。",
            ),
            "コードレスハンドブレンダーで冷凍バナナと氷を撹拌し、完成したスムージーを注いでいる。",
            "離乳食にも使えますか？",
            "もちろんです。アタッチメントを替えればみじん切りもできます。",
        ),
    ),
}

VIEWER_HANDLES = ("みかん", "ゆず", "さとみ", "ぽんた", "まる", "あや", "ちーちゃん", "こうへい", "なな", "たっくん")
WEEKDAYS = ("月曜", "火曜", "水曜", "木曜", "金曜", "土曜", "日曜")
TITLE_PREFIXES = ("【今夜限定】", "【新作】", "【ライブ特価】", "", "")

# Relative level of concurrent viewers, likes, comments and purchases a phase type draws
# (used for the Pattern B screen time series).
VIEWER_LEVEL = {
    "opening": 0.65,
    "product_demo": 1.0,
    "price_explanation": 1.1,
    "call_to_action": 1.15,
    "qna": 0.95,
    "idle": 0.55,
    "closing": 0.8,
}
COMMENT_RATE = {
    "opening": 1.4,
    "product_demo": 0.9,
    "price_explanation": 1.1,
    "call_to_action": 1.2,
    "qna": 2.4,
    "idle": 0.4,
    "closing": 1.0,
}
PURCHASE_RATE = {
    "opening": 0.05,
    "product_demo": 0.6,
    "price_explanation": 1.8,
    "call_to_action": 2.6,
    "qna": 0.6,
    "idle": 0.1,
    "closing": 0.7,
}


@dataclass
class PhasePlan:
    phase_type: str
    product: int | None  # index into the stream's set products
    urgent: bool = False
    seconds: int = 0


@dataclass
class SetItem:
    product: Product
    name: str
    quantity: int
    price: int
    original_price: int
    sold: int = 0


@dataclass
class Sample:
    """One generated stream: the document written to disk and its new-format equivalent."""

    video_id: str
    doc: dict[str, Any]
    canonical: dict[str, Any]
    legacy: bool = False
    features: dict[str, float] = field(default_factory=dict)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _yen(value: int) -> str:
    return f"{value:,}円"


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder, ties by position)."""
    weight_sum = sum(weights)
    if total <= 0 or weight_sum <= 0:
        return [0 for _ in weights]
    exact = [total * w / weight_sum for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


# ----------------------------------------------------------------- schedule --


def _schedule(rng: random.Random, count: int) -> list[tuple[dt.date, Liver, int]]:
    """Spread ``count`` streams over the livers and the nine months; returns (date, liver, n-th stream)."""
    span = (LAST_DAY - FIRST_DAY).days
    slots = [(FIRST_DAY + dt.timedelta(days=rng.randint(0, span)), LIVERS[i % len(LIVERS)]) for i in range(count)]
    slots.sort(key=lambda s: (s[0], s[1].slug))
    seen: dict[str, int] = {}
    out = []
    for day, liver in slots:
        seen[liver.slug] = seen.get(liver.slug, 0) + 1
        out.append((day, liver, seen[liver.slug]))
    return out


def _set_items(rng: random.Random, liver: Liver) -> list[SetItem]:
    products = rng.sample(CATALOG[liver.category], rng.randint(2, 4))
    items = []
    for product in products:
        if rng.random() < 0.2:  # a two-piece bundle at a further 5 % off
            price = round(product.live_price * 2 * 0.95 / 10) * 10
            items.append(SetItem(product, f"{product.name} 2個セット", 2, price, product.list_price * 2))
        else:
            items.append(SetItem(product, product.name, 1, product.live_price, product.list_price))
    return items


def _plan_phases(rng: random.Random, liver: Liver, n_items: int) -> list[PhasePlan]:
    """Decide the phase sequence and lengths from the liver's habits plus this stream's own jitter."""
    skill = liver.skill
    p_price = _clamp(0.1 + 0.7 * skill + rng.gauss(0, 0.15), 0.05, 0.95)
    p_cta = _clamp(0.35 + 0.55 * skill + rng.gauss(0, 0.15), 0.05, 0.95)
    p_urgent = _clamp(0.05 + 0.7 * skill + rng.gauss(0, 0.2), 0.0, 0.95)
    p_idle = _clamp(0.5 - 0.5 * skill + rng.gauss(0, 0.15), 0.0, 0.8)
    demo_depth = _clamp(0.6 + 0.9 * skill + rng.gauss(0, 0.25), 0.35, 1.8)
    idle_scale = _clamp(1.0 + 0.8 * (0.6 - skill) + rng.gauss(0, 0.3), 0.4, 2.0)

    n_phases = rng.randint(6, 12)
    middle: list[PhasePlan] = []
    item = 0
    while len(middle) < n_phases - 2:
        current = item % n_items
        item += 1
        middle.append(PhasePlan("product_demo", current))
        if rng.random() < p_price:
            middle.append(PhasePlan("price_explanation", current))
        if rng.random() < p_cta:
            middle.append(PhasePlan("call_to_action", current, urgent=rng.random() < p_urgent))
        if rng.random() < 0.35:
            middle.append(PhasePlan("qna", current))
        if rng.random() < p_idle:
            middle.append(PhasePlan("idle", None))
    plan = [PhasePlan("opening", None), *middle[: n_phases - 2], PhasePlan("closing", None)]

    for phase in plan:
        low, high = {
            "opening": (120, 300),
            "product_demo": (300, 900),
            "price_explanation": (120, 300),
            "call_to_action": (90, 240),
            "qna": (180, 540),
            "idle": (150, 600),
            "closing": (90, 240),
        }[phase.phase_type]
        scale = demo_depth if phase.phase_type == "product_demo" else idle_scale if phase.phase_type == "idle" else 1
        phase.seconds = round(rng.randint(low, high) * scale)
    return plan


# ------------------------------------------------------------------- texts --


def _opening(rng: random.Random, liver: Liver, items: list[SetItem]) -> tuple[str, str, str]:
    top = max(items, key=lambda s: s.original_price - s.price)
    word = CATEGORY_WORDS[liver.category]
    if liver.skill >= 0.6:
        speech = (
            f"みなさんこんばんは、{liver.name}です！今日も来てくれてありがとうございます。"
            f"今日は{word}を{len(items)}点紹介します。最後に{top.name}がびっくり価格になるので、ぜひ最後まで見ていってください！"
        )
        if rng.random() < 0.6:
            speech += "初見さんもいらっしゃい、よかったらフォローお願いします。"
        insight = rng.choice(
            (
                "冒頭で今日のラインナップと目玉価格を予告し、最後まで見る理由をつくっている。",
                "挨拶を短く切り上げて商品予告に入っており、開始直後の離脱を抑えている。",
            )
        )
    else:
        speech = (
            f"あ、始まってるかな？みなさんこんばんは〜、{liver.name}です。"
            f"えっと、今日はですね、{word}をいろいろ紹介していこうかなと思います。"
        )
        insight = rng.choice(
            (
                "挨拶が長く、今日何が買えるのかが冒頭で伝わっていない。最初の1分で目玉商品を予告したい。",
                "配信の目的や目玉商品の予告がなく、初見の視聴者が残る理由が弱い。",
            )
        )
    description = rng.choice(
        (
            "配信者がリングライトの前で手を振って挨拶している。背景の棚に今日紹介する商品が並んでいる。",
            "明るい部屋で配信者がバストアップで映り、手元のテーブルに商品が置かれている。",
        )
    )
    return speech, description, insight


def _demo(rng: random.Random, item: SetItem, seconds: int) -> tuple[str, str, str]:
    product = item.product
    if seconds >= 480:
        speech = f"それでは{item.name}を紹介しますね。{product.demo_lines[0]}{product.demo_lines[1]}"
        insight = rng.choice(
            (
                f"{item.name}を実際に使って見せ、使用感を具体的な言葉で説明している。実演の長さが購入前の不安解消につながっている。",
                "ビフォーアフターを画面で比較でき説得力が高い。実演中にコメントでの質問が増えている。",
            )
        )
    else:
        speech = f"次は{item.name}です。{product.demo_lines[0]}詳しくは商品ページを見てください。"
        insight = (
            f"{item.name}の紹介が特徴の列挙で終わり、実際に使って見せる時間が短い。"
            "実演と使用感の説明を増やすと購買意欲が高まりやすい。"
        )
    return speech, product.demo_visual, insight


def _price(rng: random.Random, item: SetItem) -> tuple[str, str, str]:
    discount = round((1 - item.price / item.original_price) * 100)
    speech = (
        f"気になるお値段ですが…通常{_yen(item.original_price)}のところ、今日はこの配信だけ{_yen(item.price)}です！"
        f"{discount}%オフは今だけなので、この機会にぜひ。"
    )
    if item.quantity > 1:
        speech += "2個セットなので、1個あたりで見るとさらにお得なんです。"
    description = rng.choice(
        (
            "手書きのフリップで通常価格に赤線を引き、ライブ価格を大きく見せている。",
            "画面下に割引価格のテロップが表示され、配信者が商品を手に持ってカメラに向けている。",
        )
    )
    insight = rng.choice(
        (
            f"通常価格{_yen(item.original_price)}との比較と割引率を明示し、お得感が数字で伝わっている。",
            "実演の直後に価格を提示しており、関心が高いうちに購入判断へつなげている。",
        )
    )
    return speech, description, insight


def _call_to_action(rng: random.Random, item: SetItem, urgent: bool) -> tuple[str, str, str]:
    if urgent:
        stock = rng.randint(3, 30)
        handle = rng.choice(VIEWER_HANDLES)
        speech = (
            f"{item.name}、残りわずか、あと{stock}個です！今だけのこの価格、配信が終わったら元に戻っちゃうので、"
            f"迷ってる方は今すぐ画面下のカートからどうぞ！{handle}さん、購入ありがとうございます！"
        )
        description = "残り在庫数を書いたボードを掲げ、画面下のカートボタンを指差している。"
        insight = rng.choice(
            (
                "在庫数と時間制限を具体的に示し、迷っている視聴者の背中を押している。直後に購入通知が集中した。",
                "「残りわずか」「今だけ」で緊急性をつくり、購入者の名前を読み上げて次の購入を誘っている。",
            )
        )
    else:
        speech = (
            f"{item.name}が気になる方は、画面下のカートから見てみてくださいね。"
            "あとで買うかもって方は、カートに入れておくと便利です。"
        )
        description = "商品を手に持ったまま、カートの場所を口頭で案内している。"
        insight = "購入の呼びかけが「気になったら」程度で弱い。在庫数や期限を示して今買う理由をつくると効果的。"
    return speech, description, insight


def _qna(rng: random.Random, item: SetItem) -> tuple[str, str, str]:
    product = item.product
    handle = rng.choice(VIEWER_HANDLES)
    speech = (
        f"{handle}さんから「{product.question}」って質問いただきました。"
        f"{product.answer}他にも質問あったらどんどんコメントしてくださいね。"
    )
    description = "配信者が手元のスマホでコメント欄を確認しながら、商品を手に取って答えている。"
    insight = f"視聴者の質問（{product.question}）に名前を呼んで即答し、購入前の不安を解消している。"
    return speech, description, insight


def _idle(rng: random.Random, seconds: int) -> tuple[str, str, str]:
    speech = rng.choice(
        (
            "えっと…ちょっと待ってくださいね。あれ、次の商品どこに置いたっけ…",
            "すみません、ちょっと準備しますね。コメント読みますね…えー、うん、ありがとうございます。",
            "あ、ちょっと音が…聞こえてますか？少々お待ちください。",
        )
    )
    description = rng.choice(
        (
            "配信者が画面外を向いてスタッフと話しており、商品は映っていない。",
            "机の上を片付けている様子が続き、画面に動きが少ない。",
        )
    )
    insight = (
        f"約{max(1, round(seconds / 60))}分間、商品への言及がなく間延びしている。"
        "準備は配信前に済ませ、沈黙の時間をつくらないことが改善点。"
    )
    return speech, description, insight


def _closing(rng: random.Random, liver: Liver, items: list[SetItem], day: dt.date) -> tuple[str, str, str]:
    next_day = WEEKDAYS[(day.weekday() + rng.randint(2, 5)) % 7]
    speech = (
        f"今日も最後まで見てくれて本当にありがとうございました！{rng.choice(items).name}はまだカートに残ってるので、"
        f"見逃した方は今からでも間に合います。次回は{next_day}の夜8時からです。またね〜！"
    )
    description = "紹介した商品をテーブルに並べて手を振り、次回配信の日時を書いたボードを見せている。"
    insight = rng.choice(
        (
            "お礼と次回配信の告知でフォローを促している。",
            "締めで購入リンクを再度案内しており、駆け込み購入を拾えている。",
        )
    )
    return speech, description, insight


# -------------------------------------------------------------------- build --


def _phases(
    rng: random.Random, liver: Liver, plan: list[PhasePlan], items: list[SetItem], day: dt.date
) -> list[dict[str, Any]]:
    phases = []
    clock = 0
    for index, p in enumerate(plan):
        item = items[p.product] if p.product is not None else None
        if p.phase_type == "opening":
            speech, description, insight = _opening(rng, liver, items)
            products = [s.name for s in items]
        elif p.phase_type == "closing":
            speech, description, insight = _closing(rng, liver, items, day)
            products = [s.name for s in items]
        elif p.phase_type == "idle":
            speech, description, insight = _idle(rng, p.seconds)
            products = []
        else:
            assert item is not None
            if p.phase_type == "product_demo":
                speech, description, insight = _demo(rng, item, p.seconds)
            elif p.phase_type == "price_explanation":
                speech, description, insight = _price(rng, item)
            elif p.phase_type == "call_to_action":
                speech, description, insight = _call_to_action(rng, item, p.urgent)
            else:
                speech, description, insight = _qna(rng, item)
            products = [item.name]
        phases.append(
            {
                "phase_index": index,
                "phase_type": p.phase_type,
                "start_sec": clock,
                "end_sec": clock + p.seconds,
                "speech_text": speech,
                "description": description,
                "insights": insight,
                "products": products,
            }
        )
        clock += p.seconds
    return phases


def _features(plan: list[PhasePlan]) -> dict[str, float]:
    """What the outcome depends on, measured on the phases actually generated."""
    total = sum(p.seconds for p in plan)
    return {
        "total_sec": total,
        "demo_share": sum(p.seconds for p in plan if p.phase_type == "product_demo") / total,
        "idle_share": sum(p.seconds for p in plan if p.phase_type == "idle") / total,
        "has_price": float(any(p.phase_type == "price_explanation" for p in plan)),
        "has_cta": float(any(p.phase_type == "call_to_action" for p in plan)),
        "urgent_cta": float(any(p.phase_type == "call_to_action" and p.urgent for p in plan)),
        "has_qna": float(any(p.phase_type == "qna" for p in plan)),
    }


def _sales(
    rng: random.Random, liver: Liver, plan: list[PhasePlan], items: list[SetItem], f: dict[str, float], rounded: bool
) -> dict[str, Any]:
    """The outcome: conversion and reach respond to the phases, around the liver's own level, with noise.

    Conversion is log-linear in the behaviour: ln(cvr %) = ln 1.1 + 1.2·(skill − 0.6)
    + 2.0·(demo share − 0.55) + 0.3 if the price is explained + 0.15 if there is a call
    to action + 0.35 more if one is urgent + 0.3 with Q&A − 3.0·idle share + N(0, 0.2).
    Viewers, click-through and watch time rise with demo share and fall with idle
    share the same way; orders go to the products the selling time was spent on.

    ``rounded`` quantises viewers and likes the way old dashboards displayed them
    (``1.23万``), so a legacy file's human-written numbers are exact.
    """
    skill = liver.skill
    demo, idle = f["demo_share"] - 0.55, f["idle_share"]
    log_cvr = (
        math.log(1.1)
        + 1.2 * (skill - 0.6)
        + 2.0 * demo
        + 0.3 * f["has_price"]
        + 0.15 * f["has_cta"]
        + 0.35 * f["urgent_cta"]
        + 0.3 * f["has_qna"]
        - 3.0 * idle
        + rng.gauss(0, 0.2)
    )
    cvr_target = _clamp(math.exp(log_cvr), 0.15, 12.0)
    reach = math.exp(rng.gauss(0, 0.3)) * (f["total_sec"] / 3600) ** 0.6 * max(0.3, 1 + 0.4 * demo - 0.8 * idle)
    viewers = max(300, round(liver.base_viewers * reach))
    if rounded:
        viewers = round(viewers, -2)
    orders = max(1, round(viewers * cvr_target / 100))

    # Orders go to the products the stream spent its selling time on.
    weights = [60.0 for _ in items]
    for p in plan:
        if p.product is None:
            continue
        bonus = {"product_demo": 1.0, "price_explanation": 1.5, "call_to_action": 3.0 if p.urgent else 1.5}.get(
            p.phase_type, 0.5
        )
        weights[p.product] += bonus * p.seconds
    for item, item_orders in zip(items, _allocate(orders, weights), strict=True):
        item.sold = item_orders + round(item_orders * rng.uniform(0.0, 0.35))  # some buy two
    items_sold = sum(item.sold for item in items)
    gmv = sum(item.price * item.sold for item in items)

    ctr_target = 6.0 * math.exp(
        0.9 * demo + 0.2 * f["has_price"] - 1.5 * idle + 0.5 * (skill - 0.6) + rng.gauss(0, 0.15)
    )
    product_clicks = max(orders * 2, round(viewers * ctr_target / 100))
    avg_watch = round(
        70 * math.exp(0.6 * (skill - 0.6) + 1.0 * demo + 0.15 * f["has_qna"] - 1.4 * idle + rng.gauss(0, 0.12))
    )
    peak = max(20, round(viewers * avg_watch / f["total_sec"] * rng.uniform(1.8, 2.8)))
    likes = round(viewers * rng.uniform(2.5, 9.0) * (1 + skill))
    if rounded:
        likes = max(1000, round(likes, -3))
    return {
        "gmv": gmv,
        "orders": orders,
        "items_sold": items_sold,
        "viewers": viewers,
        "peak_viewers": peak,
        "avg_watch_time_sec": avg_watch,
        "product_clicks": product_clicks,
        "ctr": round(product_clicks / viewers * 100, 2),
        "cvr": round(orders / viewers * 100, 2),
        "gpm": round(gmv / viewers * 1000),
        "new_followers": round(viewers * 0.005 * math.exp(0.8 * (skill - 0.6) + rng.gauss(0, 0.25))),
        "likes": likes,
        "comments": round(viewers * 0.02 * (1 + 0.8 * f["has_qna"]) * math.exp(rng.gauss(0, 0.2))),
        "shares": round(viewers * 0.002 * math.exp(rng.gauss(0, 0.3))),
        "currency": "JPY",
    }


def _screen_metrics(
    rng: random.Random, phases: list[dict[str, Any]], sales: dict[str, Any], urgent_at: set[int]
) -> list[dict[str, Any]]:
    """Overlay readings every 30 s: concurrent viewers at ``t_sec``; likes, comments and purchases
    as running totals since the stream started (as the overlay shows them). Peak viewers and the
    final totals match ``sales``."""
    total = phases[-1]["end_sec"]
    times = list(range(0, total + 1, SCREEN_SAMPLE_EVERY_SEC))

    def phase_at(t: float) -> dict[str, Any]:
        return next((p for p in phases if p["start_sec"] <= t < p["end_sec"]), phases[-1])

    level, curve = 0.3, []
    for t in times:
        level += 0.3 * (VIEWER_LEVEL[phase_at(t)["phase_type"]] - level) + rng.gauss(0, 0.03)
        curve.append(max(0.05, level))
    top = max(curve)
    viewers = [round(v / top * sales["peak_viewers"]) for v in curve]

    like_w, comment_w, purchase_w = [0.0], [0.0], [0.0]  # nothing is counted before the first reading
    for i in range(1, len(times)):
        p = phase_at(times[i] - SCREEN_SAMPLE_EVERY_SEC / 2)
        kind = p["phase_type"]
        boost = 1.6 if p["phase_index"] in urgent_at else 1.0
        like_w.append(viewers[i] * VIEWER_LEVEL[kind])
        comment_w.append(viewers[i] * COMMENT_RATE[kind])
        purchase_w.append(viewers[i] * PURCHASE_RATE[kind] * boost)
    likes = _allocate(sales["likes"], like_w)
    comments = _allocate(sales["comments"], comment_w)
    purchases = _allocate(sales["orders"], purchase_w)
    return [
        {"t_sec": t, "viewers": v, "likes": lk, "comments": c, "purchases": pu}
        for t, v, lk, c, pu in zip(
            times,
            viewers,
            itertools.accumulate(likes),
            itertools.accumulate(comments),
            itertools.accumulate(purchases),
            strict=True,
        )
    ]


def _note_viewer_change(phases: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> None:
    """Add the screen-visible audience change to the analyst's note where it is large."""
    by_t = {m["t_sec"]: m["viewers"] for m in metrics}
    for p in phases:
        start = by_t.get(p["start_sec"] // SCREEN_SAMPLE_EVERY_SEC * SCREEN_SAMPLE_EVERY_SEC)
        end = by_t.get(p["end_sec"] // SCREEN_SAMPLE_EVERY_SEC * SCREEN_SAMPLE_EVERY_SEC)
        if start and end and abs(end - start) / start >= 0.15:
            verb = "増加" if end > start else "減少"
            p["insights"] += f"この区間で同時視聴者数が{start:,}人から{end:,}人に{verb}。"


def _stream(rng: random.Random, day: dt.date, liver: Liver, nth: int, legacy_variant: int | None) -> Sample:
    legacy = legacy_variant is not None
    video_id = f"{liver.slug}-{day:%Y%m%d}-{nth:02d}"
    items = _set_items(rng, liver)
    plan = _plan_phases(rng, liver, len(items))
    phases = _phases(rng, liver, plan, items, day)
    features = _features(plan)
    sales = _sales(rng, liver, plan, items, features, rounded=legacy)
    pattern = "B" if rng.random() < 0.25 else "A"
    platform = "tiktok_shop" if rng.random() < 0.12 else "tiktok"
    quality = round(rng.uniform(0.55, 0.95), 2) if rng.random() < 0.08 else None
    prefix = rng.choice(TITLE_PREFIXES)

    record: dict[str, Any] = {
        "video_id": video_id,
        "brand_id": liver.brand_id,
        "user_email": BRAND_EMAILS[liver.brand_id],
        "liver_id": liver.liver_id,
        "liver_name": liver.name,
        "platform": platform,
        "stream_date": day.isoformat(),
        "title": f"{prefix}{liver.name}の{CATEGORY_WORDS[liver.category]}ライブ {day.month}/{day.day}",
        "filename": f"{video_id}.mp4",
        "source_pattern": pattern,
        "total_duration_sec": phases[-1]["end_sec"],
    }
    if quality is not None:
        record["quality_score"] = quality
    record["phases"] = phases
    record["sales"] = sales
    record["set_products"] = [
        {
            "name": s.name,
            "price": s.price,
            "original_price": s.original_price,
            "discount_rate": round((1 - s.price / s.original_price) * 100, 1),
            "quantity": s.quantity,
            "sold": s.sold,
        }
        for s in items
    ]
    if pattern == "B":
        urgent_at = {i for i, p in enumerate(plan) if p.urgent}
        record["screen_metrics"] = _screen_metrics(rng, phases, sales, urgent_at)
        _note_viewer_change(phases, record["screen_metrics"])
    doc = _to_legacy(record, legacy_variant) if legacy_variant is not None else record
    return Sample(video_id, doc, record, legacy, features)


# ------------------------------------------------------------------- legacy --


def _human_count(value: int) -> str:
    """How old dashboards wrote counts: ``1.23万`` when exact to two decimals, else ``12,345``."""
    if value >= 10000 and value % 100 == 0:
        return f"{value / 10000:g}万"
    return f"{value:,}"


def _clock(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _to_legacy(record: dict[str, Any], variant: int) -> dict[str, Any]:
    """Rewrite a record with the names and number styles past files used (reference contract).

    Variants: 0 = ``report.phases`` with start/end; 1 = ``report.phases`` with only
    ``duration_seconds`` and no ``phase_index``; 2 = ``pipeline_result.labeled_phases``
    with ``behavior_label`` instead of ``phase_type``.
    """
    sales = record["sales"]
    out: dict[str, Any] = {
        "id": record["video_id"],
        "brand_id": record["brand_id"],
        "user_email": record["user_email"],
        "liver_id": record["liver_id"],
        "liver_name": record["liver_name"],
        "platform": record["platform"],
        "stream_date": record["stream_date"],
        "title": record["title"],
        "filename": record["filename"],
        "data_source": {"A": "clean", "B": "screen_recording"}[record["source_pattern"]],
        "total_duration": _clock(record["total_duration_sec"]) if variant == 0 else record["total_duration_sec"],
    }
    if "quality_score" in record:
        out["quality_score"] = record["quality_score"]
    phases = []
    for p in record["phases"]:
        legacy: dict[str, Any] = {} if variant == 1 else {"phase_index": p["phase_index"]}
        legacy["behavior_label" if variant == 2 else "phase_type"] = p["phase_type"]
        if variant == 1:
            legacy["duration_seconds"] = p["end_sec"] - p["start_sec"]
        else:
            legacy["start_sec"], legacy["end_sec"] = p["start_sec"], p["end_sec"]
        legacy["speech_text"] = p["speech_text"]
        legacy["visual_context"] = p["description"]
        legacy["ai_insight"] = p["insights"]
        legacy["products"] = p["products"]
        phases.append(legacy)
    if variant == 2:
        out["pipeline_result"] = {"labeled_phases": phases}
    else:
        out["report"] = {"phases": phases}
    out["sales_data"] = {
        "gmv": f"￥{sales['gmv']:,}",
        "total_orders": f"{sales['orders']:,}",
        "product_sales_count": f"{sales['items_sold']:,}",
        "viewers": _human_count(sales["viewers"]),
        "peak_viewers": sales["peak_viewers"],
        "avg_watch_time_sec": f"{sales['avg_watch_time_sec'] // 60}:{sales['avg_watch_time_sec'] % 60:02d}",
        "product_clicks": f"{sales['product_clicks']:,}",
        "live_ctr": f"{sales['ctr']}%",
        "cvr": f"{sales['cvr']}%",
        "avg_gpm": f"￥{sales['gpm']:,}",
        "new_followers": sales["new_followers"],
        "likes": _human_count(sales["likes"]),
        "comments": sales["comments"],
        "shares": sales["shares"],
    }
    out["set_products"] = [
        {
            "name": s["name"],
            "price": f"￥{s['price']:,}",
            "original_price": f"{s['original_price']:,}円",
            "discount_rate": f"{s['discount_rate']}%",
            "quantity": s["quantity"],
            "quantity_sold": s["sold"],
        }
        for s in record["set_products"]
    ]
    if "screen_metrics" in record:  # past files kept only one overlay reading, not a time series
        last = record["screen_metrics"][-1]
        out["screen_metrics"] = {
            "viewer_count": _human_count(last["viewers"]),
            "likes": _human_count(sales["likes"]),
            "account_name": record["liver_name"],
        }
    return out


# ------------------------------------------------------------------ invalid --


def invalid_documents() -> dict[str, dict[str, Any]]:
    """Two broken records the backfill must report (with field paths) and skip."""
    return {
        "invalid-missing-phases": {
            "video_id": "invalid-missing-phases",
            "liver_id": "liver_sakura",
            "liver_name": "さくら",
            "stream_date": "2026-03-03",
            "sales": {"gmv": 120000, "orders": 52, "viewers": 8300},
        },
        "invalid-bad-times-and-gmv": {
            "video_id": "invalid-bad-times-and-gmv",
            "liver_id": "liver_kenta",
            "liver_name": "けんた",
            "stream_date": "2026-04-18",
            "phases": [
                {
                    "phase_index": 0,
                    "phase_type": "opening",
                    "start_sec": 0,
                    "end_sec": 120,
                    "speech_text": "こんばんは！",
                },
                {
                    "phase_index": 1,
                    "phase_type": "product_demo",
                    "start_sec": 480,
                    "end_sec": 300,
                    "speech_text": "明太子を紹介します。",
                },
            ],
            "sales": {"gmv": "abc", "orders": 10},
        },
    }


# --------------------------------------------------------------------- main --


def generate(count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[Sample]:
    """Build ``count`` streams; the same arguments always give the same samples."""
    rng = random.Random(seed)
    samples = []
    for i, (day, liver, nth) in enumerate(_schedule(rng, count)):
        # every tenth stream is legacy, cycling through the three legacy layouts
        variant = (i // LEGACY_EVERY) % 3 if i % LEGACY_EVERY == LEGACY_EVERY // 3 else None
        samples.append(_stream(rng, day, liver, nth, variant))
    return samples


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def write_samples(out: Path, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[Sample]:
    samples = generate(count, seed)
    (out / "invalid").mkdir(parents=True, exist_ok=True)
    for sample in samples:
        (out / f"{sample.video_id}.json").write_text(_dump(sample.doc), encoding="utf-8")
    for name, doc in invalid_documents().items():
        (out / "invalid" / f"{name}.json").write_text(_dump(doc), encoding="utf-8")
    return samples


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("samples"))
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    samples = write_samples(args.out, args.count, args.seed)
    print(
        f"wrote {len(samples)} analyses ({sum(s.legacy for s in samples)} with legacy names) "
        f"and {len(invalid_documents())} invalid files to {args.out}"
    )


if __name__ == "__main__":
    main()
