"""The dashboard's routes: overview, liver, stream, search, feedback, export and sign-in.

Every page reads through ``rag_core.dashboard`` with the signed-in caller's brand, so a brand-scoped
session sees exactly what its API key sees; another brand's liver or stream is a 404 like an absent one.

Video ids are unique per brand, not globally. An unscoped (admin) session therefore addresses a
stream as the API does, with ``brand_id=<n>`` or ``brand_id=none``: every link to a stream page
carries the owner of the video it lists, and an id several owners hold, opened with no owner
named, gets a page listing them (409). A brand-scoped session's links carry no owner, and naming
another brand finds nothing, exactly like an id nobody holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import plotly
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context as TemplateContext
from pydantic import ValidationError

from functions.api.deps import BrandParam, Context, video_scope
from functions.ui import charts
from functions.ui.session import COOKIE, MAX_AGE, check_form, csrf_token, current_caller, sign_in
from rag_core.base.auth import AuthError, Caller
from rag_core.dashboard import export, views
from rag_core.dashboard.video import video_detail
from rag_core.knowledge.feedback import PhaseNotFoundError
from rag_core.knowledge.schemas import FeedbackRequest, SearchFilters, SearchRequest
from rag_core.knowledge.store import AmbiguousVideoIdError, Owner, VideoNotFoundError

__all__ = ["ambiguous", "invalid", "message", "quote", "router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
BRAND_PATTERN = r"^([0-9]{1,9}|none)$"  # a form's owner, spelled as the API's ``brand_id`` query parameter
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _yen(value: float | None) -> str:
    return "—" if value is None else f"¥{value:,.0f}"


def _pct(value: float | None, digits: int = 1) -> str:
    """Sales percentages are stored in percent units (3.4 = 3.4 %)."""
    return "—" if value is None else f"{value:.{digits}f}%"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}分"


def owner_token(brand_id: int | None) -> str:
    """How a ``brand_id`` query parameter names an owner: its number, or ``none`` for unscoped data."""
    return "none" if brand_id is None else str(brand_id)


UNKNOWN_OWNER = Undefined(name="owner")  # what a template passes, or leaves out, when a link's owner is not known


def owner_query(caller: Caller | None, owner: int | Undefined | None) -> str:
    """``brand_id=<owner>&`` for an unscoped session, so a link opens exactly the video it lists
    even when several brands hold the id; empty for a brand-scoped session (its links never name a
    brand) and for an owner the page does not know (Jinja's Undefined: the link then leads to the
    list of owners when the id turns out to be shared)."""
    if caller is None or caller.brand_id is not None or isinstance(owner, Undefined):
        return ""
    return f"brand_id={owner_token(owner)}&"


def stream_url(caller: Caller | None, video_id: str, owner: int | Undefined | None, phase: int | None = None) -> str:
    query = owner_query(caller, owner) + (f"phase={phase}" if phase is not None else "")
    return f"/ui/streams/{quote(video_id)}" + (f"?{query.rstrip('&')}" if query else "")


@pass_context
def _stream_href(
    context: TemplateContext, video_id: str, owner: int | Undefined | None = UNKNOWN_OWNER, phase: int | None = None
) -> str:
    caller = context.get("caller")
    return stream_url(caller if isinstance(caller, Caller) else None, video_id, owner, phase)


@pass_context
def _owner_query(context: TemplateContext, owner: int | Undefined | None = UNKNOWN_OWNER) -> str:
    caller = context.get("caller")
    return owner_query(caller if isinstance(caller, Caller) else None, owner)


templates.env.filters.update(
    yen=_yen, pct=_pct, num=_num, minutes=_minutes, phase=views.phase_name, field=views.field_name
)
templates.env.globals.update(stream_href=_stream_href, owner_query=_owner_query, owner_token=owner_token)


def ui_caller(request: Request, ctx: Context) -> Caller:
    return current_caller(ctx.settings, request)


UiCaller = Annotated[Caller, Depends(ui_caller)]


def render(request: Request, ctx: Context, caller: Caller, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("charts", {})
    base = {"caller": caller, "csrf": csrf_token(ctx.settings, request), "signed_in": bool(ctx.settings.api_keys)}
    return templates.TemplateResponse(request, name, {**base, **values}, status_code=status)


def message(request: Request, status: int, title: str, text: str) -> HTMLResponse:
    """A page that only says what went wrong and what to do next."""
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "text": text, "charts": {}, "caller": None}, status_code=status
    )


def _not_found(request: Request, what: str) -> HTMLResponse:
    return message(request, 404, f"{what}が見つかりません", "URLを確認するか、概要ページから選び直してください。")


def invalid(request: Request) -> HTMLResponse:
    """A page's query or form values that do not parse (a brand id of letters, a phase of text)."""
    return message(request, 422, "URLの指定が正しくありません", "URLを確認するか、概要ページから選び直してください。")


def ambiguous(request: Request, ctx: Context, caller: Caller, exc: AmbiguousVideoIdError) -> HTMLResponse:
    """The owners of an id several brands hold, each a link to that owner's video (409, as the API).

    A GET keeps its path and query and adds the owner; a form post (feedback) links the stream page.
    """
    rows = [r for r in views.holders(ctx, exc.video_id) if r.brand_id in exc.brands]
    if request.method == "GET":
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "brand_id"]
        path = quote(request.scope["path"])  # decoded: an id may hold spaces, "%" or Japanese
        links = [
            f"{path}?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                                  for k, v in [("brand_id", owner_token(r.brand_id)), *kept])
            for r in rows
        ]  # fmt: skip
    else:
        links = [stream_url(caller, exc.video_id, r.brand_id) for r in rows]
    owners = list(zip(rows, links, strict=True))
    return render(request, ctx, caller, "ambiguous.html", 409, video_id=exc.video_id, owners=owners)


@router.get("", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js as shipped inside the plotly wheel: the version the app was installed with."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


# ------------------------------------------------------------------ sign-in --
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, ctx: Context, next: str = "/ui/") -> HTMLResponse:
    return render(request, ctx, Caller(name=""), "login.html", next=next, error=None)


@router.post("/login")
def login(
    request: Request,
    ctx: Context,
    key: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    check_form(ctx.settings, request, csrf)
    try:
        _, token = sign_in(ctx.settings, key)
    except AuthError:
        return render(request, ctx, Caller(name=""), "login.html", 401, next=next, error="APIキーが正しくありません。")
    target = next if next.startswith("/ui/") else "/ui/"  # never redirect off the dashboard
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, token, max_age=MAX_AGE, path="/ui", httponly=True, samesite="strict", secure=secure)
    return response


@router.post("/logout")
def logout(request: Request, ctx: Context, csrf: Annotated[str, Form()]) -> Response:
    check_form(ctx.settings, request, csrf)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# -------------------------------------------------------------------- pages --
@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, ctx: Context, caller: UiCaller, sort: views.SortKey = "gmv") -> HTMLResponse:
    view = views.overview(ctx, brand_id=caller.brand_id, sort=sort)
    return render(request, ctx, caller, "overview.html", view=view, charts=charts.overview(view))


@router.get("/livers/{liver_id}", response_class=HTMLResponse)
def liver_page(request: Request, ctx: Context, caller: UiCaller, liver_id: str) -> HTMLResponse:
    view = views.liver(ctx, liver_id, brand_id=caller.brand_id)
    if view is None:
        return _not_found(request, "ライバー")
    return render(request, ctx, caller, "liver.html", view=view, charts=charts.liver(view))


@router.get("/streams/{video_id}", response_class=HTMLResponse)
def stream_page(
    request: Request,
    ctx: Context,
    caller: UiCaller,
    video_id: str,
    phase: int | None = None,
    sent: bool = False,
    brand_id: BrandParam = None,
) -> HTMLResponse:
    """One stream; ``brand_id`` names its owner as in the API (an id several brands hold, opened
    by an unscoped session without it, gets the list of owners: see ``functions.ui.install``)."""
    try:
        view = views.stream(ctx, video_id, phase_index=phase, brand_id=video_scope(caller, brand_id, video_id))
    except VideoNotFoundError:
        view = None
    if view is None:
        return _not_found(request, "配信")
    return render(request, ctx, caller, "stream.html", view=view, charts=charts.stream(view), sent=sent)


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    ctx: Context,
    caller: UiCaller,
    q: Annotated[str, Query(max_length=2000)] = "",
    phase_type: str = "",
    liver_id: str = "",
    date_from: str = "",
    date_to: str = "",
    min_gmv: str = "",
    min_quality: str = "",
    video_id: str = "",
    phase: int | None = None,
    brand_id: BrandParam = None,
) -> HTMLResponse:
    """Free text, or "like this phase" (``video_id`` + ``phase``, and ``brand_id`` naming the
    video's owner as on the stream page: its texts become the query)."""
    form = {"q": q, "phase_type": phase_type, "liver_id": liver_id, "date_from": date_from, "date_to": date_to,
            "min_gmv": min_gmv, "min_quality": min_quality}  # fmt: skip
    speech = description = ""
    like_owner: int | None = None
    liked: Owner | None = None  # the video whose phase is the query: left out of the hits, that owner's only
    if video_id and phase is not None:
        try:
            source = video_detail(ctx, video_id, brand_id=video_scope(caller, brand_id, video_id))
        except VideoNotFoundError:
            source = None
        chosen = next((p for p in source.phases if p.phase_index == phase), None) if source else None
        if source is None or chosen is None:
            return _not_found(request, "フェーズ")
        speech, description, like_owner = chosen.speech_text, chosen.description, source.brand_id
        liked = Owner(like_owner)
    hits, error = [], None
    if q.strip() or speech or description:
        try:
            filters = SearchFilters(
                liver_id=liver_id or None,
                phase_type=phase_type or None,
                date_from=dt.date.fromisoformat(date_from) if date_from else None,
                date_to=dt.date.fromisoformat(date_to) if date_to else None,
                min_gmv=float(min_gmv) if min_gmv else None,
                min_quality=float(min_quality) if min_quality else None,
                exclude_video_id=video_id or None,
            )
            request_ = SearchRequest(query=q, speech_text=speech, description=description, k=10, filters=filters)
            hits = views.search(ctx, request_, brand_id=caller.brand_id, excluded_owner=liked)
        except (ValidationError, ValueError):
            error = "条件の形式が正しくありません（日付は YYYY-MM-DD、GMV は数値、品質は 0〜1）。"
    return render(
        request, ctx, caller, "search.html",
        form=form, hits=hits, error=error, like=(video_id, phase, like_owner),
    )  # fmt: skip


@router.post("/feedback")
def feedback(
    request: Request,
    ctx: Context,
    caller: UiCaller,
    video_id: Annotated[str, Form(max_length=200)],
    phase_index: Annotated[int, Form(ge=0)],
    rating: Annotated[int, Form(ge=1, le=5)],
    csrf: Annotated[str, Form()],
    brand_id: Annotated[str | None, Form(pattern=BRAND_PATTERN)] = None,
) -> Response:
    """A rating from the stream page, for the video its form names (``brand_id``: its owner, sent
    by an unscoped session's page; a brand-scoped session's names none, or its own brand)."""
    check_form(ctx.settings, request, csrf)
    with ctx.knowledge() as kb:
        try:
            scope = video_scope(caller, brand_id, video_id)
            stream = kb.get_video(video_id, brand_id=scope)
        except VideoNotFoundError:
            stream = None
        if stream is None:
            return _not_found(request, "配信")
        try:
            kb.apply_feedback(
                FeedbackRequest(video_id=video_id, phase_index=phase_index, rating=rating, reviewer_name=caller.name),
                brand_id=scope,
            )
        except PhaseNotFoundError:
            return _not_found(request, "フェーズ")
    owner = stream.get("brand_id")
    target = stream_url(caller, video_id, owner if isinstance(owner, int) else None, phase_index)
    return RedirectResponse(f"{target}&sent=true#feedback", status_code=303)


# ------------------------------------------------------------------- export --
def _csv(body: bytes, name: str) -> Response:
    headers = {"Content-Disposition": f"attachment; filename={name}"}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/export/streams.csv")
def export_streams(ctx: Context, caller: UiCaller, liver_id: str | None = None) -> Response:
    return _csv(export.streams_csv(ctx, brand_id=caller.brand_id, liver_id=liver_id), "streams.csv")


@router.get("/export/phases.csv")
def export_phases(ctx: Context, caller: UiCaller, liver_id: str | None = None) -> Response:
    return _csv(export.phases_csv(ctx, brand_id=caller.brand_id, liver_id=liver_id), "phases.csv")
