"""The web UI at ``/ui``: server-rendered pages on the same services as REST, for people.

Sign-in takes an API key once and keeps only its id in the signed session cookie
(``web/session.py``); every page resolves that key's principal again, so revoking the key signs
the browser out, and every service call is scoped by it exactly as a REST call with the key
would be. Every state-changing form carries the CSRF token. htmx (vendored under
``web/static``) adds search-as-you-type and live job progress; without script, every page and
form still works.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from importlib.resources import files
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.datastructures import FormData

from mosaic_memory.api.deps import SessionDep, StateDep
from mosaic_memory.common.failures import failure_of
from mosaic_memory.common.schemas import KINDS
from mosaic_memory.container import AppState
from mosaic_memory.errors import (
    AuthenticationFailed,
    ConfigurationError,
    Conflict,
    GrantNotFound,
    InsightNotFound,
    InvalidInput,
    JobNotFound,
    MosaicError,
    NotFound,
)
from mosaic_memory.insights.schemas import InsightCreate, InsightUpdate
from mosaic_memory.oauth.urls import base_url
from mosaic_memory.owners.schemas import KeyCreate, Principal, TeamCreate, TeamMemberAdd, UserCreate
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.preferences.schemas import PreferencePut
from mosaic_memory.search.schemas import Hit, SearchFilters, SearchRequest, SearchResponse
from mosaic_memory.skills.schemas import SkillUpdate
from mosaic_memory.web.pages import (
    UI_PREFIX,
    CsrfRefused,
    SignInRequired,
    Ui,
    error_page,
    is_ui_path,
    signin_redirect,
)
from mosaic_memory.web.session import (
    CSRF_FIELD,
    Signer,
    check_csrf,
    clear_session,
    read_session,
    start_session,
)
from mosaic_memory.web.templates import render

__all__ = ["install", "router"]

log = logging.getLogger("mosaic_memory.web")
T = TypeVar("T")

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

# Kinds a search's results can be deleted in bulk: logs are append-only, and a preference is
# deleted by key (on its own page, where its history stays visible).
BULK_DELETABLE = ("insights", "skills")
MODES = ("hybrid", "semantic", "keyword")
# Job runs started from the UI: kept referenced until done (asyncio holds tasks weakly).
_running: set[asyncio.Task[Any]] = set()


# the person behind the request ------------------------------------------------------------------
async def get_ui(request: Request, state: StateDep, session: SessionDep) -> Ui:
    signer = Signer(await state.oauth.session_secret(session))
    principal: Principal | None = None
    key_id = read_session(signer, request)
    if key_id is not None:
        try:
            principal = await state.owners.principal_of_key(session, key_id)
        except AuthenticationFailed:
            principal = None  # the key was revoked: its sessions ended with it
    await session.commit()  # the first request of a fresh database stores the signing secret
    secure = base_url(state.settings, request.scope).startswith("https://")
    ui = Ui(request=request, signer=signer, principal=principal, secure=secure)
    request.state.ui = ui  # an error page of this request keeps the person's navigation
    return ui


UiDep = Annotated[Ui, Depends(get_ui)]


async def signed_in(ui: UiDep, session: SessionDep) -> Ui:
    if ui.principal is None:
        raise SignInRequired()
    await OwnerService.enter_scope(session, ui.principal)  # the page's work is the person's
    return ui


Me = Annotated[Ui, Depends(signed_in)]


async def checked_form(request: Request, ui: UiDep) -> FormData:
    """The posted form, once its CSRF token matches this browser's cookie (else 403)."""
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    if not check_csrf(ui.signer, request, submitted if isinstance(submitted, str) else None):
        raise CsrfRefused()
    return form


Posted = Annotated[FormData, Depends(checked_form)]


def allowed(ui: Ui, scope: str) -> Principal:
    """The signed-in principal, if its key carries ``scope`` (else PermissionDenied, a 403 page)."""
    assert ui.principal is not None  # Me guarantees it
    OwnerService.require_scope(ui.principal, scope)
    return ui.principal


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def tags_of(text: str) -> list[str]:
    return sorted({t.strip() for t in text.split(",") if t.strip()})


def go(url: str, notice: str | None = None) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}notice={notice}" if notice else url, status_code=303)


def problem(exc: Exception) -> str:
    """A readable line for a refused form (the domain's own message, never a stack trace)."""
    failure = failure_of(exc)
    if failure is None:
        raise exc
    return failure.detail


def owner_param(value: str | None) -> str | None:
    return value or None


def number(text: str, name: str, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a number, got {text!r}") from exc


# sign-in ------------------------------------------------------------------------------------
@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse(f"{UI_PREFIX}/search", status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path of this UI (never another site: an open redirect would help phishing)."""
    if value and value.startswith(UI_PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{UI_PREFIX}/search"


@router.get("/signin")
async def signin_page(ui: UiDep, next: str | None = None) -> Response:
    if ui.principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return ui.page("signin.html", next=_safe_next(next))


@router.post("/signin")
async def signin(ui: UiDep, form: Posted, state: StateDep, session: SessionDep) -> Response:
    """Exchange an API key for a session; the key itself is neither stored nor shown again."""
    key = field(form, "api_key")
    target = _safe_next(field(form, "next"))
    try:
        principal = await state.owners.authenticate(session, key) if key else None
    except AuthenticationFailed:
        principal = None
    await session.commit()  # authentication records the key's last use
    if principal is None or principal.key_id is None:
        return ui.page("signin.html", next=target, error="That API key is not valid.", status=401)
    response = RedirectResponse(target, status_code=303)
    start_session(ui.signer, response, principal.key_id, hours=state.settings.web.session_hours, secure=ui.secure)
    return response


@router.post("/logout")
async def logout(form: Posted) -> Response:
    response = RedirectResponse(f"{UI_PREFIX}/signin?notice=signed-out", status_code=303)
    clear_session(response)
    return response


# search ---------------------------------------------------------------------------------------
def _day(text: str, *, end: bool) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"dates look like 2026-12-31, got {text!r}") from exc
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


def _search_request(request: Request) -> SearchRequest | None:
    """The search the query string asks for; None while the query box is empty."""
    params = request.query_params
    query = params.get("q", "").strip()
    if not query:
        return None
    kinds = [k for k in params.getlist("kinds") if k]
    tags = tags_of(params.get("tags", ""))
    filters = SearchFilters(
        tags=tags or None,
        created_after=_day(params.get("after", ""), end=False),
        created_before=_day(params.get("before", ""), end=True),
    )
    return SearchRequest.model_validate(
        {
            "query": query,
            "k": params.get("k") or 20,
            "kinds": kinds or None,
            "mode": params.get("mode") or "hybrid",
            "filters": filters,
            "owner": owner_param(params.get("owner")),
            "federated": params.get("federated") == "on",
        }
    )


async def _run_search(
    ui: Ui, state: AppState, session: SessionDep
) -> tuple[SearchRequest | None, SearchResponse | None, str | None]:
    """The search of the query string and its answer, or the reason it cannot run (shown, not
    raised). The edges' one search entry: local, plus federation peers when asked."""
    principal = allowed(ui, "read")
    try:
        req = _search_request(ui.request)
        if req is None:
            return None, None, None
        answer = await state.federation.search(session, principal, req)
    except (ValidationError, MosaicError) as exc:
        await session.rollback()
        return None, None, problem(exc)
    await session.commit()
    return req, answer, None


def _deletable(state: AppState, hits: list[Hit]) -> list[Hit]:
    """The hits a bulk delete takes: rows of the kinds it may delete that are relevant (at or
    above ``search.relevance_cut``): a weak match fills the list, it was not what was asked for."""
    cut = state.settings.search.relevance_cut
    return [h for h in hits if h.kind in BULK_DELETABLE and h.score >= cut]


@router.get("/search")
async def search_page(ui: Me, state: StateDep, session: SessionDep) -> Response:
    req, answer, error = await _run_search(ui, state, session)
    hits = answer.hits if answer else []
    params = ui.request.query_params
    context: dict[str, Any] = {
        "hits": hits,
        "peers_failed": answer.peers_failed if answer else [],
        "req": req,
        "error": error,
        "query_string": ui.request.url.query,
        "bulk_count": len(_deletable(state, hits)),
        "relevance_cut": state.settings.search.relevance_cut,
    }
    if ui.partial:
        return ui.page("_hits.html", **context)
    return ui.page(
        "search.html",
        kinds=KINDS,
        modes=MODES,
        q=params.get("q", ""),
        chosen_kinds=params.getlist("kinds"),
        mode=params.get("mode", "hybrid"),
        tags=params.get("tags", ""),
        after=params.get("after", ""),
        before=params.get("before", ""),
        owner=params.get("owner", ""),
        federated=params.get("federated") == "on",
        **context,
    )


@router.get("/search/delete")
async def bulk_delete_confirm(ui: Me, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "write")
    req, answer, error = await _run_search(ui, state, session)
    hits = [h for h in answer.hits if h.origin == "local"] if answer else []  # a peer's rows are not ours to delete
    doomed = _deletable(state, hits)
    weak = sum(1 for h in hits if h.kind in BULK_DELETABLE and h not in doomed)
    other_kinds = sum(1 for h in hits if h.kind not in BULK_DELETABLE)
    return ui.page(
        "bulk_delete.html",
        hits=doomed,
        weak=weak,
        other_kinds=other_kinds,
        error=error,
        query_string=ui.request.url.query,
        req=req,
    )


@router.post("/search/delete")
async def bulk_delete(ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    """Delete the rows the confirmation page listed (each through its kind's service, scoped)."""
    principal = allowed(ui, "write")
    deleters: dict[str, Callable[[uuid.UUID], Awaitable[None]]] = {
        "insights": lambda i: state.insights.delete(session, principal, i),
        "skills": lambda i: state.skills.delete(session, principal, i),
    }
    deleted = 0
    for item in form.getlist("item"):
        kind, _, raw = str(item).partition(":")
        if kind not in deleters:
            raise InvalidInput(f"cannot delete {kind!r} rows in bulk")
        try:
            row_id = uuid.UUID(raw)
        except ValueError as exc:
            raise InvalidInput(f"not a row id: {raw!r}") from exc
        await deleters[kind](row_id)
        deleted += 1
    await session.commit()
    back = field(form, "back")
    return go(f"{UI_PREFIX}/search?{back}" if back else f"{UI_PREFIX}/search", f"deleted-{deleted}")


# insights -------------------------------------------------------------------------------------
@router.get("/insights")
async def insights_page(
    ui: Me,
    state: StateDep,
    session: SessionDep,
    tag: str = "",
    owner: str = "",
    cursor: str | None = None,
    current: bool = False,
) -> Response:
    principal = allowed(ui, "read")
    page = await state.insights.list_page(
        session,
        principal,
        limit=50,
        cursor=cursor or None,
        owner=owner_param(owner),
        tag=tag or None,
        include_history=not current,
    )
    await session.commit()
    return ui.page("insights.html", page=page, tag=tag, owner=owner, current=current)


@router.get("/insights/{insight_id}")
async def insight_page(insight_id: uuid.UUID, ui: Me, state: StateDep, session: SessionDep) -> Response:
    return await _insight_view(insight_id, ui, state, session)


async def _insight_view(
    insight_id: uuid.UUID, ui: Ui, state: AppState, session: SessionDep, *, error: str | None = None, status: int = 200
) -> Response:
    principal = allowed(ui, "read")
    insight = await state.insights.get(session, principal, insight_id)
    sources = await state.logs.list(session, principal, limit=100, cited_by=insight_id)
    replaced = await state.insights.replaced(session, principal, insight_id)
    successor = None
    if insight.superseded_by is not None:
        try:
            successor = await state.insights.get(session, principal, insight.superseded_by)
        except InsightNotFound:
            successor = None  # deleted since
    await session.commit()
    merged_from = insight.metadata.get("merged_from") if isinstance(insight.metadata, dict) else None
    return ui.page(
        "insight.html",
        insight=insight,
        sources=sources.items,
        more_sources=sources.next_cursor is not None,
        replaced=replaced,
        successor=successor,
        merged_from=merged_from,
        error=error,
        status=status,
    )


@router.post("/insights/{insight_id}")
async def insight_update(insight_id: uuid.UUID, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "write")
    try:
        update = InsightUpdate(
            content=field(form, "content"),
            tags=tags_of(field(form, "tags")),
            category=field(form, "category") or None,
            importance=number(field(form, "importance"), "importance", 0.5),
            pinned=field(form, "pinned") == "on",
        )
        await state.insights.update(session, principal, insight_id, update)
    except (ValidationError, InvalidInput, Conflict) as exc:
        await session.rollback()
        return await _insight_view(insight_id, ui, state, session, error=problem(exc), status=422)
    await session.commit()
    return go(f"{UI_PREFIX}/insights/{insight_id}", "saved")


@router.post("/insights/{insight_id}/supersede")
async def insight_supersede(
    insight_id: uuid.UUID, ui: Me, form: Posted, state: StateDep, session: SessionDep
) -> Response:
    """Replace an insight with a corrected one: the old stays as history, linked to the new."""
    principal = allowed(ui, "write")
    old = await state.insights.get(session, principal, insight_id)
    try:
        new = await state.insights.create(
            session,
            principal,
            InsightCreate(
                content=field(form, "content"),
                tags=old.tags,
                category=old.category,
                importance=old.importance,
                owner=old.owner,
                supersedes=insight_id,
            ),
        )
    except (ValidationError, InvalidInput, Conflict) as exc:
        await session.rollback()
        return await _insight_view(insight_id, ui, state, session, error=problem(exc), status=422)
    await session.commit()
    return go(f"{UI_PREFIX}/insights/{new.id}", "superseded")


@router.get("/insights/{insight_id}/delete")
async def insight_delete_confirm(insight_id: uuid.UUID, ui: Me, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "write")
    insight = await state.insights.get(session, principal, insight_id)
    await session.commit()
    return ui.page(
        "confirm.html",
        title="Delete this insight?",
        message="The insight is deleted for good; the agent logs it was summarized from stay.",
        items=[insight.content],
        action=f"{UI_PREFIX}/insights/{insight_id}/delete",
        button="Delete insight",
        cancel=f"{UI_PREFIX}/insights/{insight_id}",
    )


@router.post("/insights/{insight_id}/delete")
async def insight_delete(insight_id: uuid.UUID, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    await state.insights.delete(session, allowed(ui, "write"), insight_id)
    await session.commit()
    return go(f"{UI_PREFIX}/insights", "deleted-1")


# preferences ----------------------------------------------------------------------------------
@router.get("/preferences")
async def preferences_page(
    ui: Me, state: StateDep, session: SessionDep, owner: str = "", scope: str = "", prefix: str = ""
) -> Response:
    principal = allowed(ui, "read")
    page = await state.preferences.list(
        session, principal, limit=200, owner=owner_param(owner), scope=scope or None, prefix=prefix or None
    )
    await session.commit()
    return ui.page("preferences.html", prefs=page.items, owner=owner, scope=scope, prefix=prefix)


def _pref_url(key: str, scope: str, owner: str) -> str:
    return f"{UI_PREFIX}/preferences/item?" + urlencode({"key": key, "scope": scope, "owner": owner})


@router.get("/preferences/item")
async def preference_page(
    ui: Me, state: StateDep, session: SessionDep, key: str, scope: str = "", owner: str = ""
) -> Response:
    principal = allowed(ui, "read")
    pref = await state.preferences.get(session, principal, key, scope=scope, owner=owner_param(owner))
    history = await state.preferences.history(session, principal, key, scope=scope, owner=pref.owner)
    await session.commit()
    return ui.page("preference.html", pref=pref, history=history, value_text=json.dumps(pref.value, indent=2))


@router.post("/preferences/item")
async def preference_save(ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    """Set a preference; the value is read as JSON when it parses, else as plain text."""
    principal = allowed(ui, "write")
    key, scope, owner = field(form, "key"), field(form, "scope"), field(form, "owner")
    raw = field(form, "value")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    data = PreferencePut.model_validate(
        {"value": value, "scope": scope, "mutable": field(form, "mutable") == "on", "owner": owner or None}
    )
    await state.preferences.put(session, principal, key, data)
    await session.commit()
    return go(_pref_url(key, scope, owner), "saved")


@router.get("/preferences/delete")
async def preference_delete_confirm(
    ui: Me, state: StateDep, session: SessionDep, key: str, scope: str = "", owner: str = ""
) -> Response:
    principal = allowed(ui, "write")
    pref = await state.preferences.get(session, principal, key, scope=scope, owner=owner_param(owner))
    await session.commit()
    return ui.page(
        "confirm.html",
        title=f"Delete the preference {pref.key!r}?",
        message="Its history of changes is kept.",
        items=[f"{pref.key}: {json.dumps(pref.value)}  ({pref.owner}, scope {pref.scope or 'everywhere'})"],
        action=f"{UI_PREFIX}/preferences/delete",
        hidden={"key": pref.key, "scope": pref.scope, "owner": pref.owner},
        button="Delete preference",
        cancel=_pref_url(pref.key, pref.scope, pref.owner),
    )


@router.post("/preferences/delete")
async def preference_delete(ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "write")
    key, scope, owner = field(form, "key"), field(form, "scope"), field(form, "owner")
    await state.preferences.delete(session, principal, key, scope=scope, owner=owner or None)
    await session.commit()
    return go(f"{UI_PREFIX}/preferences", "deleted-1")


# logs -----------------------------------------------------------------------------------------
@router.get("/logs")
async def logs_page(
    ui: Me,
    state: StateDep,
    session: SessionDep,
    session_id: str = "",
    agent: str = "",
    owner: str = "",
    cursor: str | None = None,
) -> Response:
    principal = allowed(ui, "read")
    if not session_id and not agent and cursor is None:
        # No filter: the sessions first (latest activity on top); one opens its events in order.
        sessions = await state.logs.sessions(session, principal, owner=owner_param(owner), limit=100)
        await session.commit()
        return ui.page("log_sessions.html", sessions=sessions, owner=owner)
    page = await state.logs.list(
        session,
        principal,
        limit=100,
        cursor=cursor or None,
        owner=owner_param(owner),
        session_id=session_id or None,
        agent_id=agent or None,
    )
    await session.commit()
    return ui.page("logs.html", page=page, session_id=session_id, agent=agent, owner=owner)


@router.get("/logs/{log_id}")
async def log_page(log_id: uuid.UUID, ui: Me, state: StateDep, session: SessionDep) -> Response:
    """One event, shown in its session (the events before and after it)."""
    event = await state.logs.get(session, allowed(ui, "read"), log_id)
    await session.commit()
    query = urlencode({"session_id": event.session_id or "", "owner": event.owner})
    return RedirectResponse(f"{UI_PREFIX}/logs?{query}#log-{log_id}", status_code=303)


# skills ---------------------------------------------------------------------------------------
@router.get("/skills")
async def skills_page(
    ui: Me, state: StateDep, session: SessionDep, owner: str = "", tag: str = "", cursor: str | None = None
) -> Response:
    principal = allowed(ui, "read")
    page = await state.skills.list(
        session, principal, limit=50, cursor=cursor or None, owner=owner_param(owner), tag=tag or None
    )
    await session.commit()
    return ui.page("skills.html", page=page, owner=owner, tag=tag)


@router.get("/skills/{skill_id}")
async def skill_page(skill_id: uuid.UUID, ui: Me, state: StateDep, session: SessionDep) -> Response:
    skill = await state.skills.get(session, allowed(ui, "read"), skill_id)
    await session.commit()
    return ui.page("skill.html", skill=skill, error=None)


@router.post("/skills/{skill_id}")
async def skill_update(skill_id: uuid.UUID, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "write")
    try:
        update = SkillUpdate(
            name=field(form, "name"),
            description=field(form, "description"),
            instructions=field(form, "instructions"),
            tags=tags_of(field(form, "tags")),
        )
        await state.skills.update(session, principal, skill_id, update)
    except (ValidationError, InvalidInput, Conflict) as exc:
        await session.rollback()
        skill = await state.skills.get(session, principal, skill_id)
        await session.commit()
        return ui.page("skill.html", skill=skill, error=problem(exc), status=422)
    await session.commit()
    return go(f"{UI_PREFIX}/skills/{skill_id}", "saved")


@router.get("/skills/{skill_id}/delete")
async def skill_delete_confirm(skill_id: uuid.UUID, ui: Me, state: StateDep, session: SessionDep) -> Response:
    skill = await state.skills.get(session, allowed(ui, "write"), skill_id)
    await session.commit()
    return ui.page(
        "confirm.html",
        title=f"Delete the skill {skill.name!r}?",
        message="Agents will no longer find it.",
        items=[f"{skill.name}: {skill.description}"],
        action=f"{UI_PREFIX}/skills/{skill_id}/delete",
        button="Delete skill",
        cancel=f"{UI_PREFIX}/skills/{skill_id}",
    )


@router.post("/skills/{skill_id}/delete")
async def skill_delete(skill_id: uuid.UUID, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    await state.skills.delete(session, allowed(ui, "write"), skill_id)
    await session.commit()
    return go(f"{UI_PREFIX}/skills", "deleted-1")


# jobs (admin) ---------------------------------------------------------------------------------
def _jobs(control: T | None) -> T:
    """The process's job control (``state.jobs``, a ``JobControl`` set by the app factory); the
    edge never imports ``jobs`` itself."""
    if control is None:
        raise ConfigurationError("jobs are not available in this process")
    return control


async def _runs_context(state: AppState) -> dict[str, Any]:
    runs = await _jobs(state.jobs).history(limit=30)
    return {"runs": runs, "live": any(r.status == "running" for r in runs) or bool(_running)}


@router.get("/jobs")
async def jobs_page(ui: Me, state: StateDep) -> Response:
    allowed(ui, "admin")
    jobs = await _jobs(state.jobs).list_jobs()
    return ui.page("jobs.html", jobs=jobs, **await _runs_context(state))


@router.get("/jobs/runs")
async def runs_fragment(ui: Me, state: StateDep) -> Response:
    """The ledger table alone: what the jobs page polls while a run is in progress."""
    allowed(ui, "admin")
    return ui.page("_runs.html", **await _runs_context(state))


def _log_failure(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("job run started from the web UI failed", exc_info=task.exception())


@router.post("/jobs/{job_id}/run")
async def run_job(job_id: str, ui: Me, form: Posted, state: StateDep) -> Response:
    """Start a run (or a dry run) in the background; the jobs page shows its progress."""
    allowed(ui, "admin")
    control = _jobs(state.jobs)
    known = [j.id for j in await control.list_jobs()]
    if job_id not in known:
        raise JobNotFound(job_id, known)
    task = asyncio.create_task(control.run(job_id, trigger="web", dry_run=field(form, "dry_run") == "on"))
    _running.add(task)
    task.add_done_callback(_log_failure)
    # A short job finishes before the page loads; a long one shows its progress there.
    await asyncio.wait({task}, timeout=2)
    return go(f"{UI_PREFIX}/jobs", "finished" if task.done() else "started")


@router.get("/jobs/runs/{run_id}")
async def run_page(run_id: uuid.UUID, ui: Me, state: StateDep) -> Response:
    allowed(ui, "admin")
    run = await _jobs(state.jobs).get_run(run_id)
    return ui.page("run.html", run=run, changes=json.dumps(run.changes, indent=2, default=str))


@router.post("/jobs/runs/{run_id}/rollback")
async def rollback_run(run_id: uuid.UUID, ui: Me, form: Posted, state: StateDep) -> Response:
    allowed(ui, "admin")
    await _jobs(state.jobs).rollback(run_id)
    return go(f"{UI_PREFIX}/jobs/runs/{run_id}", "rolled-back")


# admin ----------------------------------------------------------------------------------------
@router.get("/admin")
async def admin_page(ui: Me, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "admin")
    context: dict[str, Any] = {
        "users": await state.owners.list_users(session),
        "teams": await state.owners.list_teams(session),
        "keys": await state.owners.list_keys(session),
        "peers": await state.federation.list_peers(session),
        "grants": await state.federation.list_grants(session, principal),
        "audit": await state.federation.list_audit(session, principal, limit=50),
    }
    await session.commit()
    return ui.page("admin.html", **context)


@router.post("/admin/users")
async def create_user(ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "admin")
    body = UserCreate(name=field(form, "name"), admin=field(form, "admin") == "on")
    user, token = await state.owners.create_user(session, body.name, admin=body.admin)
    await session.commit()
    return ui.page("new_key.html", user=user.name, token=token, status=201)


@router.post("/admin/keys")
async def create_key(ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "admin")
    body = KeyCreate.model_validate(
        {
            "user": field(form, "user"),
            "name": field(form, "name"),
            "scopes": [s for s in form.getlist("scopes") if isinstance(s, str)] or ["read"],
            "agent_id": field(form, "agent") or None,
        }
    )
    key, token = await state.owners.create_key(
        session, body.user, name=body.name, scopes=body.scopes, agent_id=body.agent_id
    )
    await session.commit()
    return ui.page("new_key.html", user=key.user, token=token, status=201)


@router.get("/admin/keys/{key_id}/revoke")
async def revoke_key_confirm(key_id: uuid.UUID, ui: Me, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "admin")
    keys = [k for k in await state.owners.list_keys(session) if k.id == key_id]
    await session.commit()
    if not keys:
        raise NotFound(f"API key {key_id} not found")
    key = keys[0]
    own = key.id == principal.key_id
    return ui.page(
        "confirm.html",
        title=f"Revoke the key {key.prefix} of {key.user}?",
        message="It stops working at once, for every agent and browser using it."
        + (" This is the key you are signed in with: you will be signed out." if own else ""),
        items=[f"{key.user} · {key.name or 'unnamed'} · {', '.join(key.scopes)}"],
        action=f"{UI_PREFIX}/admin/keys/{key_id}/revoke",
        button="Revoke key",
        cancel=f"{UI_PREFIX}/admin",
    )


@router.post("/admin/keys/{key_id}/revoke")
async def revoke_key(key_id: uuid.UUID, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "admin")
    await state.owners.revoke_key(session, str(key_id))
    await session.commit()
    return go(f"{UI_PREFIX}/admin", "revoked")


@router.post("/admin/teams")
async def create_team(ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "admin")
    body = TeamCreate(name=field(form, "name"), members=tags_of(field(form, "members")))
    await state.owners.create_team(session, body.name, body.members)
    await session.commit()
    return go(f"{UI_PREFIX}/admin", "saved")


@router.post("/admin/teams/{team}/members")
async def add_member(team: str, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "admin")
    body = TeamMemberAdd.model_validate({"user": field(form, "user"), "role": field(form, "role") or "member"})
    await state.owners.add_member(session, team, body.user, body.role)
    await session.commit()
    return go(f"{UI_PREFIX}/admin", "saved")


@router.get("/admin/teams/{team}/members/{user}/remove")
async def remove_member_confirm(team: str, user: str, ui: Me, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "admin")
    found = await state.owners.get_team(session, team)
    await session.commit()
    if user not in found.members:
        raise NotFound(f"user {user!r} is not a member of team {team!r}")
    return ui.page(
        "confirm.html",
        title=f"Take {user} out of {team}?",
        message="Their keys stop reaching the team's memory at once; the memory stays the team's.",
        items=[f"team {team}: {', '.join(found.members)}"],
        action=f"{UI_PREFIX}/admin/teams/{quote(team, safe='')}/members/{quote(user, safe='')}/remove",
        button="Remove member",
        cancel=f"{UI_PREFIX}/admin",
    )


@router.post("/admin/teams/{team}/members/{user}/remove")
async def remove_member(team: str, user: str, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    allowed(ui, "admin")
    await state.owners.remove_member(session, team, user)
    await session.commit()
    return go(f"{UI_PREFIX}/admin", "saved")


@router.get("/admin/grants/{grant_id}/revoke")
async def revoke_grant_confirm(grant_id: uuid.UUID, ui: Me, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "admin")
    grants = [g for g in await state.federation.list_grants(session, principal) if g.id == grant_id]
    await session.commit()
    if not grants:
        raise GrantNotFound(grant_id)
    grant = grants[0]
    return ui.page(
        "confirm.html",
        title=f"Revoke the grant of {grant.owner} to {grant.peer}?",
        message="The peer's next request no longer finds it.",
        items=[f"{grant.recipient} may read {', '.join(grant.kinds)} until {grant.expires_at:%Y-%m-%d}"],
        action=f"{UI_PREFIX}/admin/grants/{grant_id}/revoke",
        button="Revoke grant",
        cancel=f"{UI_PREFIX}/admin",
    )


@router.post("/admin/grants/{grant_id}/revoke")
async def revoke_grant(grant_id: uuid.UUID, ui: Me, form: Posted, state: StateDep, session: SessionDep) -> Response:
    principal = allowed(ui, "admin")
    await state.federation.revoke_grant(session, principal, grant_id)
    await session.commit()
    return go(f"{UI_PREFIX}/admin", "revoked")


# mounting -------------------------------------------------------------------------------------
def install(app: FastAPI) -> None:
    """Mount the UI on ``app``: its routes, its static files, and its two redirects/refusals."""
    app.include_router(router)
    static = files("mosaic_memory.web") / "static"
    app.mount(f"{UI_PREFIX}/static", StaticFiles(directory=str(static)), name="ui-static")

    @app.exception_handler(SignInRequired)
    async def _signin(request: Request, exc: SignInRequired) -> Response:
        return signin_redirect(request)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        body = render(
            "ui/error.html",
            code=403,
            error="Forbidden",
            detail="This form expired or did not come from this site. Reload the page and try again.",
            me=None,
        )
        return Response(body, status_code=403, media_type="text/html")

    @app.exception_handler(ValidationError)
    async def _invalid(request: Request, exc: ValidationError) -> Response:
        page = error_page(request, exc) if is_ui_path(request.url.path) else None
        if page is None:
            raise exc
        return page
