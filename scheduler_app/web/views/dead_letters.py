"""Dead letters: runs that failed with no retries left. Retry one, acknowledge some, clear all."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from scheduler_app import services
from scheduler_app.models import Execution
from scheduler_app.web import base, keyset
from scheduler_app.web.views.executions import LIST_DEFERRED


@base.console_view
def dead_letter_list(request: HttpRequest):
    # The rows show the error; the job is for the Retry button's permission check.
    rows = Execution.objects.listed_for(request.user).dead_letters().select_related("job").defer(*LIST_DEFERRED)
    page, problems = keyset.page_or_problems(request, rows, per_page=50, field="finished_at")
    context = {"now": timezone.now(), "page": page, "problems": problems}
    status = 400 if problems else 200
    return base.render_page(
        request, "scheduler_app/dead_letters.html", context, fragments=["dead-letters-table"], status=status
    )


@require_POST
@base.console_view
def dead_letter_acknowledge(request: HttpRequest):
    """Acknowledge the ticked dead letters, or all of them (`all=1`, "clear"), after confirmation."""
    next_url = base.safe_next(request, reverse("tempora:dead-letters"))
    rows = base.visible_executions(request).dead_letters()
    everything = request.POST.get("all") == "1"
    if not everything:
        rows = rows.filter(pk__in=[v for v in request.POST.getlist("ids") if v.isdigit()])
    if not rows.exists():
        return base.refused(request, _("No dead letter selected."), next_url=next_url)
    if everything and request.POST.get("confirm") != "yes":
        return base.render_page(request, "scheduler_app/confirm_clear.html", {"count": rows.count(), "next": next_url})
    try:
        count = services.dead_letter_acknowledge(executions=rows, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    return base.done(
        request,
        ngettext("Acknowledged %(n)d dead letter.", "Acknowledged %(n)d dead letters.", count) % {"n": count},
        next_url=next_url,
    )
