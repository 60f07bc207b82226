"""The pages: Overzicht, Vragen (with the question beside the list), Geblokkeerd, Besluiten, and the forms
that post decisions and sync requests as any frontend does (events, then the outcome shown in place).

A request with the header X-Partial gets only the part of the page it asks for (the question pane, the list,
the result of a decision); without JavaScript every link and form works as a whole page.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from worker.adapters import crm_search, hr_queries, web_queries
from worker.adapters.command_requests import BrokerUnavailable, FrontendCommand, command_id, settling_subject
from worker.adapters.database import read_only
from worker.domain.changes import LinkedEntity
from worker.domain.decisions import Decision, DecisionAction, DecisionFilter
from worker.domain.events import Outcome, SyncRequested
from worker.domain.nmbrs_records import nmbrs_today
from worker.domain.web_access import Permission
from worker.entrypoints.web.app import CONTEXT, WebContext, render, require, session_of
from worker.entrypoints.web.presenting import AnsweredBy, DecisionResult, age_text, decision_result, form_errors

ROUTES = web.RouteTableDef()
PAGE_SIZE = 50
# How long a click waits for its outcome before the page says it is still being handled.
OUTCOME_TIMEOUT_S = 10.0
ENTITIES: dict[str, LinkedEntity] = {"employee": "employee", "company": "company"}


def partial(request: web.Request) -> bool:
    return bool(request.headers.get("X-Partial"))


async def post_and_wait(ctx: WebContext, command: FrontendCommand) -> list[Outcome]:
    with ctx.feed.expecting(command_id(command), settling_subject(command)) as waiter:
        await ctx.requests.post(command)
        return await ctx.feed.outcomes(waiter, OUTCOME_TIMEOUT_S)


@ROUTES.get("/")
async def home(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/overzicht")


@ROUTES.get("/overzicht")
async def overview(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    at = ctx.now()
    async with read_only(ctx.pool) as connection:
        view = await web_queries.overview(connection, nmbrs_today(at), at)
    return render(request, "overview.html", overview=view, age=lambda s: age_text(s, ctx.t), notice=None)


@ROUTES.post("/synchroniseren")
async def sync_now(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    release = form.get("vrijgeven") == "1"
    session = require(request, Permission.RELEASE_HOLD if release else Permission.SYNC_NOW)
    ctx = request.app[CONTEXT]
    command = SyncRequested(
        event_id=uuid.uuid4(),
        full=form.get("volledig") == "1",
        release_hold=release,
        requested_by=session.user.user_name,
        requested_at=ctx.now(),
    )
    try:
        outcomes = await post_and_wait(ctx, command)
        key = "overview.sync_accepted" if outcomes else "overview.sync_posted"
        notice = ctx.t("overview.release_accepted") if release and outcomes else ctx.t(key)
    except BrokerUnavailable:
        notice = ctx.t("error.broker")
    at = ctx.now()
    async with read_only(ctx.pool) as connection:
        view = await web_queries.overview(connection, nmbrs_today(at), at)
    return render(request, "overview.html", overview=view, age=lambda s: age_text(s, ctx.t), notice=notice)


def _filter(request: web.Request) -> tuple[web_queries.QuestionFilter, list[str]]:
    query = request.query
    values: dict[str, Any] = {
        "company_id": query.get("bedrijf") or None,
        "situation": query.get("situatie") or None,
        "text": query.get("zoek") or None,
        "include_skipped": query.get("overgeslagen") == "1",
    }
    try:
        return web_queries.QuestionFilter.model_validate(values), []
    except ValidationError as error:
        return web_queries.QuestionFilter(), form_errors(error, request.app[CONTEXT].t)


def _page_number(request: web.Request) -> int:
    text = request.query.get("pagina", "1")
    return max(1, int(text)) if text.isdigit() else 1


async def _questions(request: web.Request, selected: tuple[LinkedEntity, int] | None, **extra: Any) -> web.Response:
    ctx = request.app[CONTEXT]
    selection, errors = _filter(request)
    number = _page_number(request)
    template = "questions.html"
    if partial(request):
        template = "question_list.html" if request.query.get("deel") == "lijst" else "question_pane.html"
    async with read_only(ctx.pool) as connection:
        # The pane alone shows no list: its query is left out.
        page = (
            web_queries.QuestionPage(total=0, offset=0, limit=PAGE_SIZE, rows=(), companies=())
            if template == "question_pane.html"
            else await web_queries.question_page(connection, selection, (number - 1) * PAGE_SIZE, PAGE_SIZE)
        )
        detail = await web_queries.question_detail(connection, *selected) if selected else None
    return render(
        request,
        template,
        page=page,
        number=number,
        pages=max(1, -(-page.total // PAGE_SIZE)),
        selection=selection,
        query=request.query,
        errors=errors,
        detail=detail,
        selected=selected,
        age=lambda s: age_text(s, ctx.t),
        query_string=request.query_string,
        page_query=lambda n: urlencode({**request.query, "pagina": str(n)}),
        **extra,
    )


@ROUTES.get("/vragen")
async def questions(request: web.Request) -> web.StreamResponse:
    return await _questions(request, None)


@ROUTES.get("/vragen/{entity}/{nmbrs_id:\\d+}")
async def question(request: web.Request) -> web.StreamResponse:
    entity = ENTITIES.get(request.match_info["entity"])
    if entity is None:
        raise web.HTTPNotFound()
    return await _questions(request, (entity, int(request.match_info["nmbrs_id"])))


@ROUTES.get("/zoeken")
async def search(request: web.Request) -> web.StreamResponse:
    """Type-ahead over RegiCRM for Koppelen, beside the question it answers."""
    ctx = request.app[CONTEXT]
    text = request.query.get("q", "").strip()[:100]
    found = None
    if len(text) >= 2:
        async with read_only(ctx.pool) as connection:
            found = await crm_search.search(connection, text, limit=10)
    return render(
        request,
        "search_hits.html",
        found=found,
        text=text,
        entity=request.query.get("entity", "employee"),
        nmbrs_id=request.query.get("nmbrs_id", ""),
        version=request.query.get("version", ""),
    )


def _decision(request: web.Request, form: Any, decided_by: str) -> Decision:
    values: dict[str, Any] = {
        "decision_id": uuid.uuid4(),
        "entity": form.get("entity", "employee"),
        "action": form.get("action"),
        "decided_by": decided_by,
        "decided_at": request.app[CONTEXT].now(),
    }
    for field, name in (("nmbrs_id", "nmbrs_id"), ("version", "version"), ("target_id", "target_id")):
        if form.get(name):
            values[field] = form.get(name)
    if form.get("undo_decision_id"):
        values["undo_decision_id"] = form.get("undo_decision_id")
    if form.get("bedrijf"):
        values["filter"] = DecisionFilter.model_validate(
            {"company_id": int(str(form.get("bedrijf"))), "situation": form.get("situatie") or None},
            strict=False,
        )
        values["preview"] = form.get("voorbeeld") == "1"
        if form.get("bevestigt"):
            values["confirms"] = form.get("bevestigt")
    # Form fields are text: the model parses them leniently here, and strictly everywhere events arrive.
    return Decision.model_validate(values, strict=False)


@ROUTES.post("/besluit")
async def decide(request: web.Request) -> web.StreamResponse:
    """Post one decision (or a bulk one) as an event and show its outcome where the button was."""
    ctx = request.app[CONTEXT]
    form = await request.post()
    session = session_of(request)
    try:
        decision = _decision(request, form, session.user.user_name)
    except (ValidationError, ValueError) as error:
        messages = form_errors(error, ctx.t) if isinstance(error, ValidationError) else [str(error)]
        result = DecisionResult("rejected", ctx.t("result.invalid"), "; ".join(messages))
        return await _respond(request, form, result, None)
    require(request, Permission.BULK if decision.filter is not None else Permission.DECIDE)
    try:
        outcomes = await post_and_wait(ctx, decision)
    except BrokerUnavailable:
        return await _respond(request, form, DecisionResult("rejected", ctx.t("error.broker")), decision)
    answered, subject, target = None, None, None
    if decision.nmbrs_id is not None:
        async with read_only(ctx.pool) as connection:
            subject = (await hr_queries.record_names(connection, [decision.key])).get(decision.key)
            if decision.target_id is not None:
                target = await hr_queries.crm_name(connection, decision.entity, decision.target_id)
            if any(o.kind == "rejected" for o in outcomes):
                last = await hr_queries.last_answer(
                    connection, decision.entity, decision.nmbrs_id, decision.decision_id
                )
                if last is not None and last.decided_by != decision.decided_by:
                    answered = AnsweredBy(last.decided_by, last.action, last.decided_at)
    result = decision_result(outcomes, ctx.t, answered, decision.action.value, subject, target)
    return await _respond(request, form, result, decision, outcomes)


async def _respond(
    request: web.Request, form: Any, result: DecisionResult, decision: Decision | None, outcomes: Any = ()
) -> web.Response:
    preview = next((o for o in outcomes if o.kind == "preview"), None)
    names: dict[str, str] = {}
    if preview is not None:
        async with read_only(request.app[CONTEXT].pool) as connection:
            keys = [*preview.details.get("records", ()), *preview.details.get("left_out", ())]
            names = await hr_queries.record_names(connection, keys)
    if partial(request):
        return render(request, "decision_result.html", result=result, decision=decision, preview=preview, names=names)
    back = str(form.get("terug", ""))
    if back == "besluiten":
        return await _history(request, result=result)
    if back == "geblokkeerd":
        return await _blocked(request, result=result)
    entity = ENTITIES.get(str(form.get("entity", "")))
    selected = (entity, int(str(form.get("nmbrs_id")))) if entity and str(form.get("nmbrs_id", "")).isdigit() else None
    return await _questions(request, selected, result=result, preview=preview, decision=decision, names=names)


def _ticked(form: Any) -> list[tuple[str, int]]:
    """The ticked rows, 'employee:12@3': the record and the version of its question when it was ticked."""
    ticked = []
    for value in form.getall("kies", []):
        key, _, version = str(value).partition("@")
        entity, _, nmbrs_id = key.partition(":")
        if entity in ENTITIES and nmbrs_id.isdigit() and version.isdigit():
            ticked.append((key, int(version)))
    return ticked


def _fragment(request: web.Request, template: str, **values: Any) -> web.Response:
    """A part of a page for a script that asked for it; the same part in a whole page for a plain form post."""
    if partial(request):
        return render(request, template, **values)
    return render(request, "fragment_page.html", fragment=template, **values)


@ROUTES.post("/aangevinkt")
async def decide_ticked(request: web.Request) -> web.StreamResponse:
    """One action for the rows ticked in the list: a preview naming them, then one decision per row, each at
    the version that was ticked (a question changed since is refused as stale, and said so)."""
    session = require(request, Permission.BULK)
    ctx = request.app[CONTEXT]
    form = await request.post()
    ticked, action = _ticked(form), str(form.get("action", ""))
    if not ticked or action not in ("aanmaken", "blokkeren", "overslaan"):
        result = DecisionResult("rejected", ctx.t("result.invalid"), ctx.t("bulk.none_ticked"))
        return _fragment(request, "decision_result.html", result=result)
    async with read_only(ctx.pool) as connection:
        names = await hr_queries.record_names(connection, [key for key, _ in ticked])
    if form.get("bevestig") != "1":
        return _fragment(request, "ticked_preview.html", records=ticked, names=names, action=action)
    failed = []
    for key, version in ticked:
        entity, _, nmbrs_id = key.partition(":")
        decision = Decision(
            decision_id=uuid.uuid4(),
            entity=ENTITIES[entity],
            nmbrs_id=int(nmbrs_id),
            version=version,
            action=DecisionAction(action),
            decided_by=session.user.user_name,
            decided_at=ctx.now(),
        )
        try:
            outcomes = await post_and_wait(ctx, decision)
        except BrokerUnavailable:
            return _fragment(request, "decision_result.html", result=DecisionResult("rejected", ctx.t("error.broker")))
        if not any(o.kind == "applied" for o in outcomes):
            reason = next((o.reason for o in outcomes if o.kind == "rejected"), None) or ctx.t("result.waiting")
            failed.append(ctx.t("result.ticked_failed", name=names.get(key, key), reason=reason))
    done = len(ticked) - len(failed)
    message = ctx.t("result.ticked_done", action=ctx.t(f"action.{action}"), done=done, count=len(ticked))
    result = DecisionResult("rejected" if failed else "applied", message, "; ".join(failed) or None)
    return _fragment(request, "decision_result.html", result=result)


async def _blocked(request: web.Request, **extra: Any) -> web.Response:
    ctx = request.app[CONTEXT]
    async with read_only(ctx.pool) as connection:
        blocked = await web_queries.blocked_page(connection, 0, web_queries.PAGE_MAX)
    return render(request, "blocked.html", blocked=blocked.rows, total=blocked.total, **extra)


async def _history(request: web.Request, **extra: Any) -> web.Response:
    ctx = request.app[CONTEXT]
    async with read_only(ctx.pool) as connection:
        decisions = await web_queries.decisions_page(connection, 0, 100)
    return render(request, "decisions.html", decisions=decisions.rows, total=decisions.total, **extra)


@ROUTES.get("/geblokkeerd")
async def blocked(request: web.Request) -> web.StreamResponse:
    return await _blocked(request)


@ROUTES.get("/besluiten")
async def history(request: web.Request) -> web.StreamResponse:
    return await _history(request)
