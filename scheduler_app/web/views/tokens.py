"""API tokens: create one (its key is shown once, then only its hash exists), list yours, revoke one.

Tokens are personal: everyone sees and revokes their own; other users' need view_apitoken
(to see them) and change_apitoken (to revoke them).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from scheduler_app import permissions, services
from scheduler_app.models import ApiToken
from scheduler_app.web import base


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"), max_length=100, help_text=gettext_lazy("What the token is for, e.g. ci-deploy")
    )


def _render(request: HttpRequest, form: TokenForm, *, key: str = "", created: ApiToken | None = None, status=200):
    context = {
        "now": timezone.now(),
        "form": form,
        "key": key,
        "created": created,
        "tokens": permissions.tokens_for(request.user, ApiToken.objects.select_related("user")),
    }
    return base.render_page(request, "scheduler_app/tokens.html", context, fragments=["tokens-area"], status=status)


@base.console_view
def token_list(request: HttpRequest):
    """GET: your tokens and the form. POST: create one and show its key, once."""
    if request.method != "POST":
        return _render(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, key = services.token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
        else:
            response = _render(request, TokenForm(), key=key, created=token)
            if request.htmx:
                base.toast(
                    response,
                    _("Created the token %(name)s: copy its key now, it is shown only once.") % {"name": token.name},
                    changed=False,
                )
            return response
    response = _render(request, form)
    if request.htmx:
        base.toast(response, _("Please correct the errors shown."), "error", changed=False)
    return response


@require_POST
@base.console_view
def token_revoke(request: HttpRequest, pk: int):
    token = get_object_or_404(permissions.tokens_for(request.user, ApiToken.objects.all()), pk=pk)
    services.token_revoke(token=token, actor=request.user)
    return base.done(
        request, _("Revoked the token %(name)s.") % {"name": token.name}, next_url=reverse("tempora:tokens")
    )


urlpatterns = [
    path("tokens/", token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", token_revoke, name="token-revoke"),
]
