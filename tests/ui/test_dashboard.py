"""The dashboard in a real browser on the sample data: charts carry the data, navigation, brand
isolation, feedback, CSV, accessibility (axe-core) and a 390 px phone viewport."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from rag_core.context import AppContext
from rag_core.knowledge.store import point_id
from tests.appkit import ROOT, sample_records
from tests.ui.conftest import BRAND_KEY, OPS_KEY, SCREENSHOTS

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RECORDS = sample_records(100)
# The first test also pays for embedding the 639 sample phases, minutes on a busy shared CPU.
pytestmark = pytest.mark.timeout(1200)


def sign_in(browser: webdriver.Chrome, base_url: str, key: str, next_path: str = "/ui/") -> None:
    browser.get(f"{base_url}{next_path}")
    assert "/ui/login" in browser.current_url  # every page asks for the key first
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "form.stack button").click()
    WebDriverWait(browser, 30).until(lambda b: "/ui/login" not in b.current_url)
    settle(browser)


def settle(browser: webdriver.Chrome) -> None:
    """Wait until the page is loaded and, when it has charts, plotly has drawn them."""
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script(
            "return document.readyState === 'complete' && "
            "(!document.getElementById('chart-specs') || document.documentElement.dataset.chartsReady === 'true')"
        )
    )


def go(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    settle(browser)


def chart(browser: webdriver.Chrome, chart_id: str) -> dict[str, Any]:
    """What plotly drew in one chart element: its traces and layout shapes."""
    data: dict[str, Any] = browser.execute_script(
        "const el = document.getElementById(arguments[0]);"
        "return el && el.data ? {data: el.data.map(t => ({x: t.x, y: t.y, base: t.base, name: t.name})),"
        " shapes: (el.layout.shapes || []).length, svg: !!el.querySelector('svg.main-svg')} : null;",
        f"chart-{chart_id}",
    )
    assert data is not None and data["svg"], f"chart {chart_id} was not drawn"
    return data


def fetch(browser: webdriver.Chrome, path: str) -> tuple[int, bytes]:
    """GET ``path`` from the page with the browser's session cookie; (status, body bytes)."""
    status, body = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(async r => done([r.status, Array.from(new Uint8Array(await r.arrayBuffer()))]));",
        path,
    )
    return int(status), bytes(body)


def shot(browser: webdriver.Chrome, name: str) -> None:
    """A full-page screenshot at laptop width (the window grows to the page's height)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 100, 6000))
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_overview_renders_totals_and_the_monthly_gmv_chart(browser: webdriver.Chrome, base_url: str) -> None:
    sign_in(browser, base_url, OPS_KEY)
    assert browser.find_element(By.ID, "total-videos").text == str(len(RECORDS))
    assert browser.find_element(By.ID, "total-phases").text == str(sum(len(r.phases) for r in RECORDS))
    months: dict[str, float] = {}
    for r in RECORDS:
        assert r.stream_date is not None and r.sales is not None
        months[r.stream_date.isoformat()[:7]] = months.get(r.stream_date.isoformat()[:7], 0.0) + (r.sales.gmv or 0.0)
    drawn = chart(browser, "gmv-month")["data"][0]
    assert drawn["x"] == sorted(months) and drawn["y"] == pytest.approx([months[m] for m in sorted(months)])
    assert len(browser.find_elements(By.CSS_SELECTOR, "#leaders-gpm tbody tr")) == 5
    assert len(browser.find_elements(By.CSS_SELECTOR, "#top-streams tbody tr")) == 10
    go(browser, f"{base_url}/ui/?sort=cvr")
    cvrs = [
        float(td.text.rstrip("%"))
        for td in browser.find_elements(By.CSS_SELECTOR, "#top-streams tbody td:nth-child(6)")
    ]
    assert cvrs == sorted(cvrs, reverse=True)
    go(browser, f"{base_url}/ui/")
    shot(browser, "overview")


def test_navigation_overview_liver_stream_similar_phase(browser: webdriver.Chrome, base_url: str) -> None:
    sign_in(browser, base_url, OPS_KEY)
    browser.find_element(By.CSS_SELECTOR, "#leaders-gmv tbody tr a").click()
    settle(browser)
    liver_id = browser.current_url.rsplit("/", 1)[1]
    own = sorted((r for r in RECORDS if r.liver_id == liver_id), key=lambda r: (r.stream_date, r.video_id))
    gmv = chart(browser, "liver-gmv")["data"]
    assert gmv[0]["y"] == [r.sales.gmv for r in own if r.sales] and len(gmv[1]["y"]) == len(own)  # points + trend
    mix = chart(browser, "liver-mix")["data"]
    assert [t["name"] for t in mix] == ["あなた", "上位ライバー"] and len(mix[0]["x"]) >= 3
    chart(browser, "liver-duration")
    assert browser.find_elements(By.CSS_SELECTOR, "#suggestions > li .evidence li")  # suggestions cite figures
    shot(browser, "liver")

    browser.find_element(By.CSS_SELECTOR, "#liver-streams tbody tr a").click()
    settle(browser)
    video_id = browser.current_url.split("/ui/streams/")[1].split("?")[0]
    record = next(r for r in RECORDS if r.video_id == video_id)
    timeline = chart(browser, "timeline")["data"][0]
    assert len(timeline["y"]) == len(record.phases)
    assert timeline["base"][1] == pytest.approx((record.phases[1].start_sec or 0) / 60, abs=0.01)
    assert browser.find_element(By.ID, "prompt").text.strip()
    similar = browser.find_elements(By.CSS_SELECTOR, "#similar a.similar-link")
    assert similar
    target = similar[0].get_attribute("href")
    assert target is not None
    similar[0].click()
    settle(browser)
    assert browser.current_url.split("#")[0] == target.split("#")[0] and video_id not in browser.current_url
    assert browser.find_element(By.CSS_SELECTOR, "#phase-list .selected")


def test_stream_with_recording_draws_metrics_over_the_phase_bands(browser: webdriver.Chrome, base_url: str) -> None:
    recorded = next(r for r in RECORDS if r.screen_metrics)
    plain = next(r for r in RECORDS if not r.screen_metrics)
    sign_in(browser, base_url, OPS_KEY, f"/ui/streams/{recorded.video_id}")
    metrics = chart(browser, "metrics")
    assert [t["name"] for t in metrics["data"]] == ["視聴者数", "いいね", "コメント", "購入"]
    assert metrics["data"][0]["y"] == [s.viewers for s in recorded.screen_metrics]
    assert metrics["shapes"] == len(recorded.phases)  # one band per phase under the curves
    assert browser.find_element(By.ID, "provenance").text.startswith("分析JSON")
    shot(browser, "stream")
    go(browser, f"{base_url}/ui/streams/{plain.video_id}")
    assert "画面録画" in browser.find_element(By.ID, "no-recording").text  # the empty state says what to do


def test_search_shows_why_results_ranked(browser: webdriver.Chrome, base_url: str) -> None:
    sign_in(browser, base_url, OPS_KEY, "/ui/search?q=%E4%BF%9D%E6%B9%BF&phase_type=product_demo")
    results = browser.find_elements(By.CSS_SELECTOR, "#results > li")
    assert 1 <= len(results) <= 10
    assert all("類似度" in r.text and "品質" in r.text for r in results)
    assert all("商品デモ" in r.find_element(By.CSS_SELECTOR, ".tag").text for r in results)
    shot(browser, "search")


def test_feedback_from_the_page_changes_the_quality_score(
    browser: webdriver.Chrome, base_url: str, ctx: AppContext
) -> None:
    record = RECORDS[5]
    sign_in(browser, base_url, OPS_KEY, f"/ui/streams/{record.video_id}?phase=1")
    before = float(browser.find_element(By.ID, "quality").text)
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, "send-feedback").click()  # rating 5 is preselected
    WebDriverWait(browser, 60).until(staleness_of(page))  # the old page also reads as settled
    settle(browser)
    assert "評価を受け付けました" in browser.page_source
    after = float(browser.find_element(By.ID, "quality").text)
    assert after > before
    with ctx.knowledge() as kb:
        phase = point_id(record.video_id, 1, record.brand_id)  # a sample's brand keys its points
        stored = kb.client.retrieve(kb.store.phases, [phase], with_payload=["quality_score"])
    assert stored[0].payload is not None and stored[0].payload["quality_score"] == pytest.approx(after, abs=1e-3)
    status, _ = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/ui/feedback', {method: 'POST', body: new URLSearchParams({video_id: arguments[0], phase_index: '1',"
        " rating: '1', csrf: 'forged'})}).then(r => done([r.status, null]));",
        record.video_id,
    )
    assert status == 403  # without the session's form token


def test_brand_scoped_session_sees_only_its_brand(browser: webdriver.Chrome, base_url: str) -> None:
    own = [r for r in RECORDS if r.brand_id == 101]
    other = next(r for r in RECORDS if r.brand_id == 102)
    sign_in(browser, base_url, BRAND_KEY)
    assert browser.find_element(By.ID, "total-videos").text == str(len(own))
    cookie = next(c for c in browser.get_cookies() if c["name"] == "lcr_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and BRAND_KEY not in cookie["value"]
    assert fetch(browser, f"/ui/livers/{other.liver_id}")[0] == 404
    assert fetch(browser, f"/ui/streams/{other.video_id}")[0] == 404
    go(browser, f"{base_url}/ui/streams/{other.video_id}")
    assert "見つかりません" in browser.title
    status, body = fetch(browser, f"/ui/export/streams.csv?liver_id={other.liver_id}")
    assert status == 200 and list(csv.DictReader(io.StringIO(body.decode("utf-8-sig")))) == []


def test_csv_export_opens_with_columns_and_rows(browser: webdriver.Chrome, base_url: str) -> None:
    liver = RECORDS[0].liver_id
    sign_in(browser, base_url, OPS_KEY, f"/ui/livers/{liver}")
    href = browser.find_element(By.CSS_SELECTOR, "a[href^='/ui/export/phases.csv']").get_attribute("href")
    assert href is not None
    status, body = fetch(browser, href)
    assert status == 200 and body.startswith(b"\xef\xbb\xbf")  # BOM: Excel in Japan reads UTF-8
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows and list(rows[0])[:7] == [
        "brand_id",  # an unscoped session's export spans brands
        "video_id",
        "phase_index",
        "liver_id",
        "liver_name",
        "stream_date",
        "phase_type",
    ]
    assert len(rows) == sum(len(r.phases) for r in RECORDS if r.liver_id == liver)
    assert rows[0]["liver_name"] == RECORDS[0].liver_name  # Japanese text intact


PAGES = ["/ui/", "/ui/livers/liver_aoi", "/ui/search?q=%E4%BF%9D%E6%B9%BF", "/ui/login"]


@pytest.mark.parametrize("path", [*PAGES, "stream"])
def test_axe_finds_no_serious_violation(browser: webdriver.Chrome, base_url: str, path: str) -> None:
    if path == "stream":
        path = f"/ui/streams/{next(r for r in RECORDS if r.screen_metrics).video_id}"
    sign_in(browser, base_url, OPS_KEY)
    go(browser, f"{base_url}{path}")
    browser.execute_script(AXE.read_text(encoding="utf-8"))  # axe-core from node_modules, nothing fetched
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done({passes: r.passes.length, violations: r.violations.map(v => ({id: v.id,"
        " impact: v.impact, n: v.nodes.length, where: v.nodes.slice(0, 2).map(n => n.target.join(' '))}))}));"
    )
    assert result["passes"] > 10  # the rules did run on the page
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


@pytest.mark.parametrize("path", ["/ui/", "/ui/livers/liver_aoi", "stream", "/ui/search?q=%E4%BF%9D%E6%B9%BF"])
def test_pages_are_usable_at_390px(browser: webdriver.Chrome, base_url: str, path: str) -> None:
    name = path.strip("/").split("/")[1].split("?")[0] if path.count("/") > 2 or "?" in path else "overview"
    if path == "stream":
        path, name = f"/ui/streams/{next(r for r in RECORDS if r.screen_metrics).video_id}", "stream"
    sign_in(browser, base_url, OPS_KEY)
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    )
    go(browser, f"{base_url}{path}")
    page_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert page_width <= 390  # no sideways scrolling of the page; wide tables scroll in their own box
    for el in browser.find_elements(By.CSS_SELECTOR, ".chart"):
        assert el.size["width"] <= 390
    links = browser.find_elements(By.CSS_SELECTOR, "header nav a")
    assert all(link.is_displayed() for link in links)
    browser.save_screenshot(str(SCREENSHOTS / f"mobile-{name}.png"))


def test_form_posts_from_another_origin_are_refused(base_url: str) -> None:
    """A cross-site form (no session cookie thanks to SameSite, but also a foreign Origin) is refused."""
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/ui/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        foreign = client.post(
            "/ui/login", data={"key": OPS_KEY, "csrf": token}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        same = client.post("/ui/login", data={"key": OPS_KEY, "csrf": token}, headers={"Origin": base_url})
        assert same.status_code == 303 and "httponly" in same.headers["set-cookie"].lower()
