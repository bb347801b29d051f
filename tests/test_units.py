"""Pure logic: phone numbers, search, sorting, merge fields, page tokens, log masking, URLs and
the rate limiter."""

from __future__ import annotations

import json
import logging

import pytest

from contacts.merge_fields import render
from contacts.model import Customer, fold
from contacts.phones import normalise_or_keep, to_e164
from handlers.page_tokens import PageTokens
from handlers.routing import stable_choice
from integrations.rate_limit import RateLimiter
from service.deadline import Deadline
from service.errors import BadRequest, DependencyUnavailable
from service.logs import JsonFormatter, mask, reset_trace, set_trace
from service.signature import public_url


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("(415) 555-0134", "+14155550134"),
        ("415.555.0134", "+14155550134"),
        ("+1 415 555 0134", "+14155550134"),
        ("whatsapp:+14155550134", "+14155550134"),
        ("WhatsApp: +44 20 7946 0958", "+442079460958"),
        ("ext. 12", None),
        ("", None),
        ("x" * 100, None),
    ],
)
def test_numbers_typed_any_way_become_e164(typed: str, e164: str | None) -> None:
    assert to_e164(typed, "US") == e164


def test_unparsable_numbers_are_kept_as_written_and_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="contacts.phones")
    for _ in range(3):
        assert normalise_or_keep("ext. 12 (front desk)", "US") == "ext. 12 (front desk)"
    assert normalise_or_keep("+1 (415) 555-0134", "US") == "+14155550134"
    reports = [r for r in caplog.records if r.name == "contacts.phones"]
    assert [r.getMessage() for r in reports] == ["phone number kept as written: it does not parse"]


def test_fold_ignores_case_and_accents() -> None:
    assert fold("  José ÅKESSON ") == "jose akesson"


def entry(name: str, email: str | None = None, sms: str | None = None) -> Customer:
    return Customer("C-1", "rec1", name, "alice@example.com", sms=sms, email=email)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("ana", True),
        ("ANA", True),
        ("mariana", False),
        ("jose", True),
        ("ruiz@", True),
        ("555-0134", True),
        ("(415) 555 0134", True),
        ("12", False),  # too few digits to be a phone search
        ("0199", False),
    ],
)
def test_search_matches_name_email_and_phone_digits(query: str, found: bool) -> None:
    customer = entry("Ana José", email="ana.ruiz@example.com", sms="+14155550134")
    assert customer.list_entry().matches(query) is found


def test_list_order_is_name_then_id() -> None:
    a = Customer("C-2", "r2", "ana", "w").list_entry()
    b = Customer("C-1", "r1", "Ana", "w").list_entry()
    c = Customer("C-0", "r0", "Bob", "w").list_entry()
    assert sorted([c, a, b], key=lambda e: e.sort_key) == [b, a, c]


def test_merge_fields_are_filled_case_insensitively() -> None:
    customer = Customer(
        "C-1", "rec1", "Ana Ruiz", "alice@example.com", columns={"Company": "Owl Co"}
    )
    text = "Hi {{ first_name }} of {{COMPANY}}, {{owner}} here ({{worker}})"
    assert render(text, customer, "desk@example.com") == (
        "Hi Ana of Owl Co, alice@example.com here (desk@example.com)"
    )


def test_a_template_with_an_empty_merge_field_is_dropped() -> None:
    customer = Customer("C-1", "rec1", "Ana Ruiz", "alice@example.com", columns={"email": " "})
    assert render("Mail {{email}}", customer, "w") is None
    assert render("Mail {{nonexistent}}", customer, "w") is None
    assert render("No fields at all", customer, "w") == "No fields at all"
    assert render("Hi {{name}, ok", customer, "w") is None
    assert render("Hi {{}}", customer, "w") is None
    assert render("Hi {{" + "n" * 150 + "}}", customer, "w") is None
    assert render("Hi name}} {{name}}", customer, "w") is None


def test_page_tokens_round_trip_and_are_bound_to_worker_and_query() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue("alice@example.com", "ana", ("ana ruiz", "C-1"))
    assert tokens.read(token, "Alice@Example.com", "ANA") == ("ana ruiz", "C-1")
    for worker, query, text in [
        ("bob@example.com", "ana", token),
        ("alice@example.com", None, token),
        ("alice@example.com", "ana", token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]),
        ("alice@example.com", "ana", "x" * 5000),
        ("alice@example.com", "ana", "not-a-token"),
    ]:
        with pytest.raises(BadRequest) as raised:
            tokens.read(text, worker, query)
        assert raised.value.field == "NextPageToken"
    other_key = PageTokens(b"z" * 32)
    with pytest.raises(BadRequest):
        other_key.read(token, "alice@example.com", "ana")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+14155550134", "+1415***0134"),
        ("call (415) 555-0134", "call 4155***0134"),
        ("whatsapp:+14155550134", "whatsapp:+1415***0134"),
        ("alice@example.com", "a***@example.com"),
        ("2024-01-01T10:00:00.000Z", "2024-01-01T10:00:00.000Z"),
        ("latency 12.5 ms", "latency 12.5 ms"),
    ],
)
def test_logs_mask_numbers_and_emails(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_log_lines_are_json_with_severity_trace_and_masked_fields() -> None:
    token = set_trace("0123456789abcdef/1;o=1")
    try:
        record = logging.LogRecord(
            "x", logging.WARNING, __file__, 1, "to %s", ("+14155550134",), None
        )
        record.fields = {"worker": "alice@example.com", "status": 503}
        line = json.loads(JsonFormatter("proj").format(record))
    finally:
        reset_trace(token)
    assert line["severity"] == "WARNING"
    assert line["message"] == "to +1415***0134"
    assert line["worker"] == "a***@example.com"
    assert line["status"] == 503
    assert line["logging.googleapis.com/trace"] == "projects/proj/traces/0123456789abcdef"


def test_the_public_url_comes_from_the_setting_or_the_proxy_headers() -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "fl.example.com, inner",
        "Host": "h",
    }
    assert public_url("/callbacks/crm", "a=1", headers.get, None) == (
        "https://fl.example.com/callbacks/crm?a=1"
    )
    assert public_url("/callbacks/crm", "", {"Host": "localhost:8080"}.get, None) == (
        "http://localhost:8080/callbacks/crm"
    )
    base = "https://us-central1-p.cloudfunctions.net/frontline"
    assert public_url("/callbacks/crm", "", headers.get, base) == f"{base}/callbacks/crm"
    assert public_url("/frontline/callbacks/crm", "", headers.get, base) == f"{base}/callbacks/crm"


class FakeTime:
    """A monotonic clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_rate_limiter_never_allows_more_than_five_in_any_second() -> None:
    fake = FakeTime()
    limiter = RateLimiter(5, margin_seconds=0.1, monotonic=fake.monotonic, sleep=fake.sleep)
    sent = []
    for _ in range(40):
        limiter.acquire(Deadline(float("inf")))
        sent.append(fake.now)
    for index, start in enumerate(sent):
        assert len([t for t in sent[index:] if t < start + 1.0]) <= 5
    assert sent[-1] - sent[0] < 40 / 5 * 1.2  # and not much slower than the limit


def test_the_rate_limiter_fails_fast_when_the_wait_outlives_the_deadline() -> None:
    fake = FakeTime()
    limiter = RateLimiter(5, monotonic=fake.monotonic, sleep=fake.sleep)
    for _ in range(5):
        limiter.acquire(Deadline(float("inf")))
    with pytest.raises(DependencyUnavailable):
        limiter.acquire(Deadline.after(0.05))


def test_a_rep_joining_takes_over_unknown_numbers_only_for_themselves() -> None:
    numbers = [f"+1415555{n:04d}" for n in range(1000)]
    before = {n: stable_choice(n, ["a@x", "b@x", "c@x"]) for n in numbers}
    after = {n: stable_choice(n, ["a@x", "b@x", "c@x", "d@x"]) for n in numbers}
    assert set(before.values()) == {"a@x", "b@x", "c@x"}
    moved = [n for n in numbers if before[n] != after[n]]
    assert moved
    assert {after[n] for n in moved} == {"d@x"}
