"""The employee page ("Medewerker"): one RegiTijd employee, found by name from anywhere, with its follow-up
tasks done in place ("gegevens aanvullen"). Every change is posted as a follow-up command, exactly as the CLI
and any other frontend post it, and its outcome shown where the button was.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from worker.adapters import employee_page
from worker.adapters.command_requests import BrokerUnavailable
from worker.adapters.database import read_only
from worker.adapters.employee_history import employee_history
from worker.adapters.hr_queries import EmployeeTasks, open_tasks, regitijd_employee_id
from worker.domain.employee_history import HistoryKind, filter_history, history_csv, history_json
from worker.domain.events import SyncRequested
from worker.domain.follow_ups import FollowUpCommand
from worker.domain.nmbrs_records import nmbrs_today
from worker.domain.web_access import Permission
from worker.entrypoints.web.app import CONTEXT, render, require
from worker.entrypoints.web.pages import partial, post_and_wait
from worker.entrypoints.web.presenting import (
    DecisionResult,
    decision_result,
    follow_up_rejection_text,
    form_errors,
    hours_text,
    leave_bars,
    leave_change,
    sync_steps,
)

ROUTES = web.RouteTableDef()
SEARCH_MIN = 2
SEARCH_MAX = 100
CHART_WIDTH = 480  # the leave chart's bars, in SVG units (it scales with the page)


def _employee_id(request: web.Request) -> int:
    return int(request.match_info["employee_id"])


async def _search(request: web.Request) -> employee_page.EmployeeSearch | None:
    text = request.query.get("q", "").strip()[:SEARCH_MAX]
    if len(text) < SEARCH_MIN:
        return None
    async with read_only(request.app[CONTEXT].pool) as connection:
        return await employee_page.find_employees(connection, text, limit=10)


TASK_LIST_LIMIT = 200  # the "nog aan te vullen" list on the search page; the count says how many there are


@ROUTES.get("/medewerkers")
async def employees(request: web.Request) -> web.StreamResponse:
    """Find an employee by name; the hits alone for the type-ahead, the whole page without JavaScript. Without a
    search, the employees whose data is still to be completed, each a link to its page."""
    found = await _search(request)
    if partial(request):
        return render(
            request, "employee_hits.html", found=found, text=request.query.get("q", ""), pick_manager_for=None
        )
    tasks: list[EmployeeTasks] = []
    if found is None:
        async with read_only(request.app[CONTEXT].pool) as connection:
            tasks = await open_tasks(connection)
    return render(
        request,
        "employees.html",
        found=found,
        text=request.query.get("q", ""),
        pick_manager_for=None,
        tasks=tasks[:TASK_LIST_LIMIT],
        tasks_total=len(tasks),
    )


@ROUTES.get("/medewerkers/persoon/{person_id:\\d+}")
async def employee_of_person(request: web.Request) -> web.StreamResponse:
    """The page of a RegiCRM person's RegiTijd employee (an active one first): what a question's candidate links
    to when that person is an employee already."""
    async with read_only(request.app[CONTEXT].pool) as connection:
        employee_id = await connection.fetchval(
            "SELECT employee_id FROM rt_employees WHERE person_id = $1 ORDER BY active DESC, employee_id LIMIT 1",
            int(request.match_info["person_id"]),
        )
    if employee_id is None:
        return _not_found(request)
    raise web.HTTPSeeOther(f"/medewerkers/{employee_id}")


@ROUTES.get("/medewerkers/nmbrs/{nmbrs_id:\\d+}")
async def employee_of_nmbrs(request: web.Request) -> web.StreamResponse:
    """The page of the RegiTijd employee an Nmbrs employee is linked to: what a question or decision links to."""
    async with read_only(request.app[CONTEXT].pool) as connection:
        employee_id = await regitijd_employee_id(connection, int(request.match_info["nmbrs_id"]))
    if employee_id is None:
        return _not_found(request)
    raise web.HTTPSeeOther(f"/medewerkers/{employee_id}")


@ROUTES.get("/medewerkers/{employee_id:\\d+}/leidinggevende")
async def manager_search(request: web.Request) -> web.StreamResponse:
    """Type-ahead for the manager: RegiTijd employees by name, each with the button that makes them the manager."""
    found = await _search(request)
    return render(
        request,
        "employee_hits.html",
        found=found,
        text=request.query.get("q", ""),
        pick_manager_for=_employee_id(request),
    )


@ROUTES.get("/medewerkers/{employee_id:\\d+}")
async def employee(request: web.Request) -> web.StreamResponse:
    return await _employee(request, _employee_id(request))


async def _employee(request: web.Request, employee_id: int, result: DecisionResult | None = None) -> web.Response:
    ctx = request.app[CONTEXT]
    async with read_only(ctx.pool) as connection:
        detail = await employee_page.employee_detail(connection, employee_id, nmbrs_today(ctx.now()))
    if detail is None:
        return _not_found(request)
    return render(request, "employee.html", employee=detail, result=result, today=nmbrs_today(ctx.now()).isoformat())


def _not_found(request: web.Request) -> web.Response:
    t = request.app[CONTEXT].t
    return render(request, "error.html", 404, title=t("employee.not_found"), message=t("employee.not_found_text"))


async def _detail_or_404(request: web.Request, connection: Any) -> employee_page.EmployeeDetail | web.Response:
    ctx = request.app[CONTEXT]
    detail = await employee_page.employee_detail(connection, _employee_id(request), nmbrs_today(ctx.now()))
    if detail is None:
        return _not_found(request)
    return detail


@ROUTES.get("/medewerkers/{employee_id:\\d+}/verlof")
async def leave(request: web.Request) -> web.StreamResponse:
    """The desktop's "Verlof / uren": the balance per year, explained per segment, and the last recalculation."""
    async with read_only(request.app[CONTEXT].pool) as connection:
        detail = await _detail_or_404(request, connection)
        if isinstance(detail, web.Response):
            return detail
        stored = await employee_page.employee_leave(connection, detail.employee_id)
        entries = await employee_history(connection, detail.employee_id) or []
    last = next((e for e in reversed(entries) if e.kind is HistoryKind.LEAVE and isinstance(e.after, dict)), None)
    change = leave_change(detail.employee_id, last.before, last.after) if last is not None else None
    years = sorted(stored.result.years, key=lambda y: y.year, reverse=True) if stored else []
    return render(
        request,
        "employee_leave.html",
        employee=detail,
        leave=stored,
        years=years,
        bars=leave_bars(reversed(years), CHART_WIDTH),
        chart_width=CHART_WIDTH,
        change=change,
        changed_at=last.at if last else None,
    )


def _kinds(request: web.Request) -> list[HistoryKind]:
    """The kinds ticked in the filter; an unknown one is ignored (a stale bookmark), never an error page."""
    return [HistoryKind(k) for k in request.query.getall("soort", []) if k in HistoryKind.__members__.values()]


@ROUTES.get("/medewerkers/{employee_id:\\d+}/geschiedenis")
async def history(request: web.Request) -> web.StreamResponse:
    """Every change of this employee in time order, newest first, with its cause; filter by kind, export."""
    async with read_only(request.app[CONTEXT].pool) as connection:
        detail = await _detail_or_404(request, connection)
        if isinstance(detail, web.Response):
            return detail
        entries = await employee_history(connection, detail.employee_id) or []
    kinds = _kinds(request)
    shown_entries = filter_history(entries, kinds)
    present = [k for k in HistoryKind if any(e.kind is k for e in entries)]
    return render(
        request,
        "employee_history.html",
        employee=detail,
        # Newest first; what one transaction recorded keeps its reading order (the decision, then what it did).
        entries=sorted(shown_entries, key=lambda e: e.at, reverse=True),
        total=len(entries),
        kinds=present,
        chosen=kinds,
        query=urlencode([("soort", k.value) for k in kinds]),
    )


@ROUTES.get("/medewerkers/{employee_id:\\d+}/geschiedenis.{format:(csv|json)}")
async def history_export(request: web.Request) -> web.StreamResponse:
    """The (filtered) history as a file, in time order: CSV for a spreadsheet (UTF-8 with a BOM, which Excel
    needs to read accents), JSON for a program. Both read back into the same entries."""
    async with read_only(request.app[CONTEXT].pool) as connection:
        entries = await employee_history(connection, _employee_id(request))
    if entries is None:
        raise web.HTTPNotFound()
    chosen = filter_history(entries, _kinds(request))
    name = f"geschiedenis-medewerker-{_employee_id(request)}.{request.match_info['format']}"
    if request.match_info["format"] == "csv":
        body, content_type = "\ufeff" + history_csv(chosen), "text/csv"
    else:
        body, content_type = history_json(chosen), "application/json"
    return web.Response(
        text=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _commands(
    form: Any, employee_id: int, issued_by: str, now: Any, current: employee_page.EmployeeDetail
) -> list[FollowUpCommand]:
    """The follow-up commands one form of the page stands for. Characteristics come as the ticked boxes of the
    whole list: what changed against the stored set becomes one command per characteristic."""
    kind = str(form.get("command", ""))
    common: dict[str, Any] = {"employee_id": employee_id, "issued_by": issued_by, "issued_at": now}
    if kind == "characteristics":
        ticked = {str(v) for v in form.getall("kenmerk", [])}
        stored = set(current.characteristics)
        changes = [("set_characteristic", c) for c in current.all_characteristics if c in ticked - stored]
        changes += [("remove_characteristic", c) for c in current.all_characteristics if c in stored - ticked]
        return [
            FollowUpCommand.model_validate(
                {**common, "command_id": uuid.uuid4(), "command": command, "characteristic": name}, strict=False
            )
            for command, name in changes
        ]
    values: dict[str, Any] = {**common, "command_id": uuid.uuid4(), "command": kind}
    for field in ("manager_employee_id", "hours", "on", "time_category", "task", "reason"):
        if form.get(field):
            values[field] = str(form.get(field)).strip().replace(",", ".") if field == "hours" else form.get(field)
    if kind == "set_is_manager":
        values["is_manager"] = form.get("is_manager") == "1"
    # Form fields are text: the model parses them leniently here, and strictly everywhere events arrive.
    return [FollowUpCommand.model_validate(values, strict=False)]


@ROUTES.post("/medewerkers/{employee_id:\\d+}/aanvullen")
async def follow_up(request: web.Request) -> web.StreamResponse:
    """Post the follow-up command(s) of one control of the page and show the outcome above the page."""
    session = require(request, Permission.DECIDE)
    ctx = request.app[CONTEXT]
    employee_id = _employee_id(request)
    form = await request.post()
    async with read_only(ctx.pool) as connection:
        current = await employee_page.employee_detail(connection, employee_id, nmbrs_today(ctx.now()))
    if current is None:
        return await _employee(request, employee_id)
    try:
        commands = _commands(form, employee_id, session.user.user_name, ctx.now(), current)
    except ValidationError as error:
        result = DecisionResult("rejected", ctx.t("result.invalid"), "; ".join(form_errors(error, ctx.t)))
        return await _employee(request, employee_id, result)
    if not commands:
        return await _employee(request, employee_id, DecisionResult("applied", ctx.t("employee.nothing_changed")))
    results = []
    for command in commands:
        try:
            outcomes = await post_and_wait(ctx, command)
        except BrokerUnavailable:
            return await _employee(request, employee_id, DecisionResult("rejected", ctx.t("error.broker")))
        result = decision_result(
            outcomes, ctx.t, action=command.command, subject=current.name, target=_target(command, form)
        )
        if result.status == "rejected" and result.reason:
            result = DecisionResult("rejected", follow_up_rejection_text(result.reason, ctx.t), result.reason)
        results.append(result)
    return await _employee(request, employee_id, _combined(results))


def _target(command: FollowUpCommand, form: Any) -> str:
    """What the command's result sentence names besides the employee: the manager, category, hours, ..."""
    if command.command == "set_manager":
        return str(form.get("manager_name", "")) or str(command.manager_employee_id)
    if command.hours is not None:
        return hours_text(command.hours)
    return str(command.characteristic or command.time_category or command.task or "")


def _combined(results: list[DecisionResult]) -> DecisionResult:
    """One result for the commands of one form: the first refusal, or every change done with the last tasks."""
    if refused := next((r for r in results if r.status != "applied"), None):
        return refused
    last = results[-1]
    leave = tuple(leave for r in results for leave in r.leave)
    return DecisionResult("applied", " ".join(r.message for r in results), last.reason, leave, last.tasks)


@ROUTES.post("/medewerkers/{employee_id:\\d+}/synchroniseren")
async def sync_employee(request: web.Request) -> web.StreamResponse:
    """Sync this employee now: a sync request naming the employee, polled through the normal events; the steps
    page follows it."""
    session = require(request, Permission.SYNC_EMPLOYEE)
    ctx = request.app[CONTEXT]
    async with read_only(ctx.pool) as connection:
        detail = await _detail_or_404(request, connection)
    if isinstance(detail, web.Response):
        return detail
    if detail.nmbrs_employee_id is None:  # blue: nothing in Nmbrs to read
        return await _employee(request, detail.employee_id, DecisionResult("rejected", ctx.t("sync_one.blue")))
    command = SyncRequested(
        event_id=uuid.uuid4(),
        employee_id=detail.nmbrs_employee_id,
        requested_by=session.user.user_name,
        requested_at=ctx.now(),
    )
    try:
        await post_and_wait(ctx, command)
    except BrokerUnavailable:
        return await _employee(request, detail.employee_id, DecisionResult("rejected", ctx.t("error.broker")))
    raise web.HTTPSeeOther(f"/medewerkers/{detail.employee_id}/synchroniseren/{command.event_id}")


@ROUTES.get("/medewerkers/{employee_id:\\d+}/synchroniseren/{request_id}")
async def sync_employee_steps(request: web.Request) -> web.StreamResponse:
    """The steps of one "sync this employee now", fetched again by the page until the last one is done."""
    ctx = request.app[CONTEXT]
    try:
        request_id = uuid.UUID(request.match_info["request_id"])
    except ValueError:
        return _not_found(request)
    async with read_only(ctx.pool) as connection:
        detail = await _detail_or_404(request, connection)
        if isinstance(detail, web.Response):
            return detail
        sync = await employee_page.employee_sync(connection, request_id)
    if sync is None or sync.nmbrs_employee_id != detail.nmbrs_employee_id:
        return _not_found(request)
    steps = sync_steps(sync.requested_by, sync.requested_at, sync.report, sync.outcomes, sync.handled, ctx.t)
    return render(
        request,
        "employee_sync.html",
        employee=detail,
        sync=sync,
        steps=steps,
        running=any(step.state == "waiting" for step in steps),
    )
