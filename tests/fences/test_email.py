"""tempora.send_email's fences, against a fake SMTP server (aiosmtpd) that keeps every message.

A refused message never reaches the server: not one envelope, not even a connection.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from scheduler_app import builtin_tasks, services


def save_errors(**kwargs) -> str:
    with pytest.raises(ValidationError) as failure:
        services.job_create(name="mail", task="tempora.send_email", kwargs=kwargs)
    return " ".join(failure.value.message_dict["kwargs"])


def addresses(count: int, domain: str = "example.com") -> list[str]:
    return [f"user{n}@{domain}" for n in range(count)]


# The sender ----------------------------------------------------------------------------------


def test_a_different_sender_is_refused_not_replaced(smtp):
    with pytest.raises(
        ValueError,
        match=r"^from_email: 'ceo@bank\.example' is not the configured sender "
        r"tempora@example\.com",
    ):
        builtin_tasks.send_email("ops@example.com", "Invoice", "Pay now.", from_email="ceo@bank.example")
    assert (smtp.envelopes, smtp.connections) == ([], 0)


@pytest.mark.django_db
def test_a_different_sender_is_a_400_when_saved(smtp):
    assert "from_email: 'ceo@bank.example' is not the configured sender" in save_errors(
        to="ops@example.com",
        subject="Invoice",
        body="Pay now.",
        from_email="ceo@bank.example",
    )


def test_the_configured_sender_may_carry_a_display_name(smtp):
    builtin_tasks.send_email("ops@example.com", "Report", "Body", from_email="Nightly reports <Tempora@Example.com>")
    [envelope] = smtp.envelopes
    assert envelope.mail_from.lower() == "tempora@example.com"
    assert smtp.messages()[0]["From"] == "Nightly reports <Tempora@Example.com>"


def test_without_from_email_the_configured_sender_is_used(smtp):
    assert builtin_tasks.send_email("ops@example.com", "Report", "Body")["from_email"] == "tempora@example.com"
    assert smtp.envelopes[0].mail_from == "tempora@example.com"


# Recipients -----------------------------------------------------------------------------------


def test_recipients_are_capped_at_20_by_default(smtp):
    with pytest.raises(ValueError, match=r"^to: 21 recipients \(to, cc and bcc together\); the limit is 20"):
        builtin_tasks.send_email(addresses(21), "Spam", "Body")
    assert (smtp.envelopes, smtp.connections) == ([], 0)


def test_twenty_recipients_are_sent(smtp):
    builtin_tasks.send_email(addresses(20), "News", "Body")
    [envelope] = smtp.envelopes
    assert len(envelope.rcpt_tos) == 20


def test_the_cap_counts_cc_and_bcc_and_comes_from_a_setting(settings, smtp):
    settings.TEMPORA_EMAIL_MAX_RECIPIENTS = 3
    with pytest.raises(ValueError, match=r"4 recipients .*; the limit is 3 \(TEMPORA_EMAIL_MAX_RECIPIENTS\)"):
        builtin_tasks.send_email(addresses(2), "Hi", "Body", cc=["c@example.com"], bcc=["d@example.com"])
    assert smtp.envelopes == []


def test_bcc_recipients_get_the_message_without_being_named_in_it(smtp):
    builtin_tasks.send_email("a@example.com", "Hi", "Body", cc="c@example.com", bcc=["hidden@example.com"])
    [envelope] = smtp.envelopes
    assert sorted(envelope.rcpt_tos) == ["a@example.com", "c@example.com", "hidden@example.com"]
    [message] = smtp.messages()
    assert message["Cc"] == "c@example.com" and "hidden" not in str(message)


@pytest.mark.parametrize(
    "recipient",
    [
        "a@evil.example",
        "a@sub.example.com",
        "a@example.com.evil.example",
        '"a@example.com"@evil.example',
        "a@example.com <b@evil.example>",
    ],
)
def test_recipients_outside_the_allowed_domains_are_refused(settings, smtp, recipient):
    settings.TEMPORA_EMAIL_ALLOWED_DOMAINS = ["example.com"]
    with pytest.raises(ValueError, match=r"^bcc: .* is not in an allowed domain \(TEMPORA_EMAIL_ALLOWED_DOMAINS"):
        builtin_tasks.send_email("ok@example.com", "Hi", "Body", bcc=[recipient])
    assert (smtp.envelopes, smtp.connections) == ([], 0)


def test_mail_to_an_allowed_domain_is_sent(settings, smtp):
    settings.TEMPORA_EMAIL_ALLOWED_DOMAINS = ["example.com", "example.org"]
    builtin_tasks.send_email(["Ops <OPS@EXAMPLE.COM>", "b@example.org"], "Hi", "Body")
    assert sorted(smtp.envelopes[0].rcpt_tos) == ["OPS@EXAMPLE.COM", "b@example.org"]


@pytest.mark.django_db
def test_a_disallowed_domain_is_a_400_when_saved(settings, smtp):
    settings.TEMPORA_EMAIL_ALLOWED_DOMAINS = ["example.com"]
    assert "to: 'x@evil.example' is not in an allowed domain" in save_errors(
        to=["ok@example.com", "x@evil.example"],
        subject="Hi",
        body="Body",
    )


# Header injection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Hi\r\nBcc: victim@evil.example"),
        ("subject", "Hi\nX-Spam: no"),
        ("to", "a@example.com\r\nBcc: victim@evil.example"),
        ("to", "Ann\r\nBcc: victim@evil.example <a@example.com>"),
        ("cc", "Ann\n <a@example.com>"),
        ("from_email", "tempora@example.com\r\nReply-To: thief@evil.example"),
    ],
)
def test_line_breaks_in_headers_are_refused(smtp, field, value):
    arguments = {"to": "ok@example.com", "subject": "Hi", "body": "Body", field: value}
    with pytest.raises(ValueError, match=rf"^{field}: .*line break"):
        builtin_tasks.send_email(**arguments)
    assert (smtp.envelopes, smtp.connections) == ([], 0)


def test_a_line_break_in_the_body_is_only_text(smtp):
    builtin_tasks.send_email("ok@example.com", "Hi", "Line one\r\nBcc: nobody@evil.example\r\n")
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["ok@example.com"]
