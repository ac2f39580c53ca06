"""The dashboard's pages and the fragments their scripts fetch.

Every page needs a login session of a user who still holds a team role (read from the database
on each request, as the API does); the actor handed to services is that user's principal. Writes
go through the API's own services (`task_submit`, `pipeline_decide`), so role rules, validation
and audit are the same; a service's refusal becomes a message on the page, never a 500. Deciding a
gate is for owners: members see the gate without buttons, and their POST is refused with 403.
"""

import json
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.principal import Principal, principal_for_user
from apps.accounts.services import LoginFailed, LoginThrottled, browser_login
from apps.accounts.sso.selectors import sso_provider_for_email
from apps.core.exceptions import Forbidden, NotFound, ServiceError
from apps.dashboard import selectors
from apps.dashboard.forms import (
    GateDecisionForm,
    LockReleaseForm,
    LoginForm,
    StepRetryForm,
    TaskSubmitForm,
)
from apps.environments.selectors.locks import lock_ticket_find
from apps.environments.services import locks
from apps.tasks import selectors as task_selectors
from apps.tasks import services as task_services
from apps.tasks.models import TaskStatus
from apps.tasks.pipelines import PIPELINE_PREFIX
from apps.tasks.selectors import execution_get

DASHBOARD_ROLES = {"owner", "member"}


def _may_decide_gates(principal: Principal) -> bool:
    return not principal.is_token and "owner" in principal.roles


def dashboard_view(view):
    """Login required (else to /login?next=…), and a team role still held; sets
    `request.sfp_principal`, which the audit middleware records the request under."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        principal = principal_for_user(request.user)
        if not principal.roles & DASHBOARD_ROLES:
            auth_logout(request)
            messages.error(request, "Your account no longer belongs to a team.")
            return redirect_to_login(request.get_full_path())
        request.sfp_principal = principal
        return view(request, *args, **kwargs)

    return wrapper


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    principal = request.sfp_principal
    common = {"principal": principal, "may_decide_gates": _may_decide_gates(principal)}
    return render(request, template, common | context, status=status)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("dashboard:overview")


# --- session ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if request.method == "GET" and request.user.is_authenticated:
        return redirect(next_url)
    form = LoginForm(request.POST or None)
    retry_after = None
    if request.method == "POST" and form.is_valid() and not form.cleaned_data["password"]:
        email = form.cleaned_data["email"]
        if sso_provider_for_email(email) is not None:
            query = urlencode({"email": email, "redirect_to": next_url})
            return redirect(f"/auth/v1/sso/saml/login?{query}")
        form.add_error("password", "This field is required.")
    if request.method == "POST" and form.is_valid():
        try:
            browser_login(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                request=request,
            )
        except LoginThrottled as throttled:
            form.add_error(None, str(throttled))
            retry_after = throttled.retry_after
        except LoginFailed as failed:
            form.add_error(None, str(failed))
        else:
            return redirect(next_url)
    response = render(
        request,
        "dashboard/login.html",
        {"form": form, "next": next_url},
        status=200 if retry_after is None else 429,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    messages.info(request, "Signed out.")
    return redirect("dashboard:login")


# --- tasks ------------------------------------------------------------------------------------


@dashboard_view
@require_http_methods(["GET", "POST"])
def overview(request: HttpRequest) -> HttpResponse:
    principal = request.sfp_principal
    form = TaskSubmitForm(request.POST or None, principal=principal)
    if request.method == "POST" and form.is_valid():
        try:
            execution = task_services.task_submit(
                actor=principal,
                type=form.cleaned_data["type"],
                data=form.cleaned_data["data"],
                request=request,
            )
        except ServiceError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Task {execution.type} submitted.")
            return redirect("dashboard:task", operation_id=execution.operation_id)
    return _page(
        request,
        "dashboard/overview.html",
        {"form": form, "tasks": task_selectors.overview_tasks()},
        status=400 if form.errors else 200,
    )


def _execution_or_404(operation_id: str):
    try:
        return execution_get(operation_id)
    except NotFound as error:
        raise Http404(error.message) from None


@dashboard_view
@require_GET
def task_detail(request: HttpRequest, operation_id: str) -> HttpResponse:
    execution = _execution_or_404(operation_id)
    # The state is read before the log: lines stored meanwhile are caught up by the socket.
    lines = task_selectors.log_tail(execution)
    return _page(
        request,
        "dashboard/task_detail.html",
        {
            "task": execution,
            "data_json": json.dumps(execution.data, indent=2, sort_keys=True),
            "lines": lines,
            "attempts": task_selectors.attempts_of(execution),
            "last_line_seq": lines[-1].seq if lines else 0,
            "log_tail_lines": task_selectors.LOG_TAIL_LINES,
            "is_pipeline": execution.type.startswith(PIPELINE_PREFIX),
        },
    )


@dashboard_view
@require_GET
def task_history(request: HttpRequest) -> HttpResponse:
    """All tasks, newest first, 25 a page, filtered by status, type or an id/trigger prefix."""
    status = request.GET.get("status", "")
    type_ = request.GET.get("type", "")
    search = request.GET.get("q", "").strip()[:100]
    if status not in TaskStatus.values:
        status = ""
    paginator = Paginator(
        task_selectors.task_history(status=status, type_=type_, search=search),
        task_selectors.HISTORY_PAGE_SIZE,
    )
    page = paginator.get_page(request.GET.get("page"))
    chosen = {"status": status, "type": type_, "q": search}
    filters = urlencode({name: value for name, value in chosen.items() if value})
    return _page(
        request,
        "dashboard/history.html",
        {
            "page": page,
            "tasks": page.object_list,
            "status": status,
            "type": type_,
            "q": search,
            "filters": filters,
            "statuses": TaskStatus.values,
            "types": task_selectors.task_types(),
        },
    )


@dashboard_view
@require_POST
def task_cancel_view(request: HttpRequest, operation_id: str) -> HttpResponse:
    """Cancel through the API's service: owners, or whoever submitted the task."""
    execution = _execution_or_404(operation_id)
    try:
        status = task_services.task_cancel(
            actor=request.sfp_principal, execution=execution, request=request
        )
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        done = status == "cancelled"
        messages.success(request, "Cancelled." if done else "Cancellation requested.")
    return redirect("dashboard:task", operation_id=operation_id)


@dashboard_view
@require_GET
def task_rows_fragment(request: HttpRequest) -> HttpResponse:
    return _page(request, "dashboard/_task_rows.html", {"tasks": task_selectors.overview_tasks()})


@dashboard_view
@require_GET
def task_row_fragment(request: HttpRequest, operation_id: str) -> HttpResponse:
    """One overview row; 204 for a task the overview does not list (a pipeline's gate)."""
    execution = task_selectors.overview_task(operation_id)
    if execution is None:
        _execution_or_404(operation_id)
        return HttpResponse(status=204)
    return _page(request, "dashboard/_task_row.html", {"task": execution})


@dashboard_view
@require_GET
def task_summary_fragment(request: HttpRequest, operation_id: str) -> HttpResponse:
    execution = _execution_or_404(operation_id)
    return _page(request, "dashboard/_task_summary.html", {"task": execution})


# --- locks ------------------------------------------------------------------------------------


def _lock_board_context() -> dict:
    return {"board": selectors.lock_board()}


@dashboard_view
@require_GET
def lock_board(request: HttpRequest) -> HttpResponse:
    return _page(request, "dashboard/locks.html", _lock_board_context())


@dashboard_view
@require_GET
def lock_board_fragment(request: HttpRequest) -> HttpResponse:
    return _page(request, "dashboard/_lock_board.html", _lock_board_context())


@dashboard_view
@require_POST
def lock_release_view(request: HttpRequest) -> HttpResponse:
    """An owner frees a stuck lock from the board (`locks.lock_force_release`, audited)."""
    form = LockReleaseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name the lock ticket to release.")
        return redirect("dashboard:locks")
    ticket = lock_ticket_find(form.cleaned_data["ticket"])
    if ticket is None:
        raise Http404("Lock not found")
    try:
        locks.lock_force_release(actor=request.sfp_principal, ticket=ticket, request=request)
    except Forbidden as error:
        return _page(request, "dashboard/forbidden.html", {"message": error.message}, status=403)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        resource = ticket.resource_row
        messages.success(request, f"Released {resource.resource} of {resource.repository}.")
    return redirect("dashboard:locks")


# --- pipelines --------------------------------------------------------------------------------


@dashboard_view
@require_GET
def pipeline_list(request: HttpRequest) -> HttpResponse:
    return _page(
        request, "dashboard/pipelines.html", {"pipelines": task_selectors.recent_pipelines()}
    )


@dashboard_view
@require_GET
def pipelines_fragment(request: HttpRequest) -> HttpResponse:
    return _page(
        request, "dashboard/_pipelines.html", {"pipelines": task_selectors.recent_pipelines()}
    )


def _pipeline_or_404(operation_id: str):
    parent = _execution_or_404(operation_id)
    if not parent.type.startswith(PIPELINE_PREFIX):
        raise Http404(f"Pipeline {operation_id} not found")
    return parent


@dashboard_view
@require_POST
def pipeline_decide_view(request: HttpRequest, operation_id: str) -> HttpResponse:
    parent = _pipeline_or_404(operation_id)
    form = GateDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject for a named step.")
        return redirect("dashboard:pipelines")
    approved = form.cleaned_data["decision"] == "approve"
    try:
        gate = task_services.pipeline_decide(
            actor=request.sfp_principal,
            parent=parent,
            step=form.cleaned_data["step"],
            approved=approved,
            comment=form.cleaned_data["comment"],
            request=request,
        )
    except Forbidden as error:
        return _page(request, "dashboard/forbidden.html", {"message": error.message}, status=403)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{gate.step}: {'approved' if approved else 'rejected'}.")
    return redirect("dashboard:pipelines")


@dashboard_view
@require_POST
def pipeline_retry_view(request: HttpRequest, operation_id: str) -> HttpResponse:
    """Run a failed step of a pipeline again (owners; the API also allows application tokens)."""
    parent = _pipeline_or_404(operation_id)
    if not _may_decide_gates(request.sfp_principal):
        message = "Forbidden - Requires role: owner"
        return _page(request, "dashboard/forbidden.html", {"message": message}, status=403)
    form = StepRetryForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name the step to retry.")
        return redirect("dashboard:pipelines")
    try:
        task_services.pipeline_retry_step(
            actor=request.sfp_principal, parent=parent, step=form.cleaned_data["step"],
            request=request,
        )  # fmt: skip
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{form.cleaned_data['step']}: running again.")
    return redirect("dashboard:pipelines")
