"""The read-only console over HTTP (the collector on a real uvicorn server, a real
SQLite file and a real PostgreSQL database): closed without the token, refused with
a wrong one, search, timeline, explain, the journey diagram with counts that match
the decision record, links to the customers behind each count, every customer value
escaped."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import Engine, distinct, func, select

from omni_journey.store.core import ENROLLMENTS, JOURNEY_LOG
from tests.integration.console.conftest import (
    EVIL,
    IMAGE,
    SCRIPT,
    TOKEN,
    ConsoleShop,
    build_console_shop,
    console_settings,
)
from tests.integration.test_collector import serving

PAGES = [
    "/console/",
    "/console/?q=c-1",
    "/console/customers/c-1",
    "/console/customers/c-1/explain/console_demo",
    "/console/journeys/console_demo",
    "/console/journeys/console_demo/customers?step=remind&count=entered",
    "/console/nowhere",
]
EVIL_PATH = quote(EVIL, safe="")


@dataclass
class Console:
    shop: ConsoleShop
    http: httpx.Client  # with the right credentials
    anonymous: httpx.Client

    def get(self, path: str) -> httpx.Response:
        response = self.http.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response


@contextmanager
def open_console(shop: ConsoleShop) -> Iterator[Console]:
    with (
        serving(shop.engine, shop.settings) as url,
        httpx.Client(base_url=url, auth=("ops", TOKEN), timeout=30) as http,
        httpx.Client(base_url=url, timeout=30) as anonymous,
    ):
        yield Console(shop, http, anonymous)


@pytest.fixture
def console(console_shop: ConsoleShop) -> Iterator[Console]:
    with open_console(console_shop) as opened:
        yield opened


def _customers_in(body: str) -> set[str]:
    return {unquote(m) for m in re.findall(r'href="/console/customers/([^"/?]+)"', body)}


def _links(body: str) -> list[tuple[str, str]]:
    """(href, text) of every link, unescaped."""
    return [
        (html.unescape(h), html.unescape(t))
        for h, t in re.findall(r'<a href="([^"]+)">([^<]*)</a>', body)
    ]


def _no_data(body: str) -> None:
    for secret in ("c-1", "example.com", "console_demo", "cart_reminder", "pwned"):
        assert secret not in body


# --- access ------------------------------------------------------------------------------


def test_without_a_token_every_console_address_answers_404(console_shop: ConsoleShop) -> None:
    closed = console_settings(console_shop.shop, console_shop.project, console_token=None)
    with serving(console_shop.engine, closed) as url, httpx.Client(base_url=url) as http:
        for path in PAGES:
            for auth in (None, ("ops", TOKEN)):
                response = http.get(path, auth=auth)
                assert response.status_code == 404, path
                assert "www-authenticate" not in response.headers
                _no_data(response.text)
        assert http.post("/console/", auth=("ops", TOKEN)).status_code == 404
        bare = http.get("/console", auth=("ops", TOKEN), follow_redirects=True)
        assert bare.status_code == 404
        _no_data(bare.text)


def test_missing_or_wrong_credentials_are_refused(console: Console) -> None:
    wrong = [None, ("ops", TOKEN + "x"), ("ops", TOKEN[:-1]), (TOKEN, ""), ("ops", "")]
    for path in PAGES:
        for auth in wrong:
            response = console.anonymous.get(path, auth=auth)
            assert response.status_code == 401, (path, auth)
            assert response.headers["www-authenticate"].startswith("Basic ")
            _no_data(response.text)
    posted = console.anonymous.post("/console/customers/c-1")
    assert posted.status_code == 401  # a write is refused before it is even considered
    garbled = console.anonymous.get("/console/", headers={"Authorization": "Basic %%%"})
    assert garbled.status_code == 401
    bearer = console.anonymous.get("/console/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 401


def test_the_console_only_reads(console: Console) -> None:
    for path in PAGES[:5]:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = console.http.request(method, path)
            assert response.status_code == 405, (method, path)
            _no_data(response.text)
    assert console.http.head("/console/customers/c-1").status_code == 200


def test_every_answer_carries_the_security_headers(console: Console) -> None:
    answers = [console.http.get(p) for p in PAGES] + [console.anonymous.get("/console/")]
    assert {a.status_code for a in answers} == {200, 303, 401, 404}
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "http" not in csp and "unsafe" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-frame-options"] == "DENY"


def test_access_logs_name_no_customer(console: Console, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    console.http.get("/console/", params={"q": "c-1@example.com"})
    console.get("/console/customers/c-1/explain/console_demo")
    console.get("/console/journeys/console_demo/customers?step=remind&count=sent:email")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "uvicorn.access")
    assert "/console/customers/[redacted]" in logged
    for secret in ("c-1", "example.com", "sent:email"):
        assert secret not in logged


# --- search, timeline, explain -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "customer"),
    [("c-1", "c-1"), ("c-3@Example.COM", "c-3"), ("0151 12345678", EVIL), (EVIL, EVIL)],
)
def test_search_finds_a_customer_by_id_email_or_phone(
    console: Console, key: str, customer: str
) -> None:
    response = console.http.get("/console/", params={"q": key})
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/customers/{quote(customer, safe='')}"
    page = console.get(response.headers["location"]).text
    assert f"<h1>{html.escape(customer, quote=False)}</h1>" in page


def test_a_customer_address_with_another_key_leads_to_the_survivor(console: Console) -> None:
    by_email = console.http.get("/console/customers/c-1%40example.com")
    assert (by_email.status_code, by_email.headers["location"]) == (303, "/console/customers/c-1")
    nobody = console.http.get("/console/customers/nobody%40example.com")
    assert nobody.status_code == 404 and "nobody" not in nobody.text


def test_a_search_that_matches_nobody_says_so(console: Console) -> None:
    page = console.get("/console/?q=nobody%40example.com").text
    assert "No customer matches that key." in page
    assert 'id="journeys"' in page and "console_demo" in page


def test_the_timeline_shows_events_messages_and_decisions(console: Console) -> None:
    page = console.get("/console/customers/c-3").text
    timeline = page[page.index('id="timeline"') :]
    for kind, name in [
        ("event", "order.completed"),
        ("event", "product.added"),
        ("message", "cart_reminder"),
        ("journey", "converted"),
        ("journey", "entered"),
    ]:
        assert re.search(rf'class="tag {kind}">{kind}</span></td><td>{re.escape(name)}<', timeline)
    assert timeline.index("order.completed") < timeline.index("product.added")  # newest first
    assert 'id="identities"' in page and "c-3@example.com" in page
    consent = page[page.index('id="consent"') :]
    assert '<td>email</td><td><span class="granted">granted</span>' in consent
    assert '<td>sms</td><td><span class="withdrawn">withdrawn</span>' in consent
    assert 'href="/console/customers/c-3/explain/console_demo"' in page


def test_the_timeline_pages(console: Console) -> None:
    whole = console.get("/console/customers/c-1").text
    rows = whole[whole.index('id="timeline"') :].count("<tr>") - 1
    assert rows > 3
    second = console.get("/console/customers/c-1?offset=2").text
    assert second[second.index('id="timeline"') :].count("<tr>") - 1 == rows - 2
    assert f"items 3–{rows}" in second and "← newer" in second


def test_explain_shows_each_decision_and_its_guard(console: Console) -> None:
    page = console.get("/console/customers/c-2/explain/console_demo").text
    decisions = page[page.index('id="decisions"') :]
    assert "<td>remind</td><td>skipped</td><td>no_consent</td>" in decisions
    assert "<td>entered</td>" in decisions
    ats = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)</td>", decisions)
    assert ats and ats == sorted(ats)
    sent = console.get("/console/customers/c-1/explain/console_demo").text
    assert "<td>remind</td><td>sent</td><td>email</td>" in sent
    assert "propensity" in sent  # the policy's data behind the send


def test_explain_for_a_journey_never_entered_names_the_rule(console: Console) -> None:
    page = console.get("/console/customers/c-1/explain/welcome_series").text
    assert 'id="not-entered"' in page and "no_trigger_event" in page
    missing = console.http.get("/console/customers/c-1/explain/no_such_journey")
    assert missing.status_code == 404


# --- journeys --------------------------------------------------------------------------------


def _expected_counts(shop: ConsoleShop, step: str) -> dict[str, int]:
    """The step's counts read straight from the decision record and the enrollments."""
    log = JOURNEY_LOG.c
    with shop.engine.connect() as connection:
        mine = [log.journey_key == "console_demo", log.step_id == step]
        entered = connection.execute(
            select(func.count(distinct(log.enrollment_id))).where(*mine, log.kind == "step")
        ).scalar_one()
        counts = {"entered": int(entered)}
        for kind, reason, n in connection.execute(
            select(log.kind, log.reason, func.count())
            .where(*mine, log.kind.in_(("sent", "skipped")))
            .group_by(log.kind, log.reason)
        ):
            counts[f"{kind} {reason}"] = int(n)
        converted = connection.execute(
            select(func.count()).where(*mine, log.kind == "converted", log.holdout.is_(False))
        ).scalar_one()
        if converted:
            counts["converted"] = int(converted)
        counts["waiting"] = int(
            connection.execute(
                select(func.count()).where(
                    ENROLLMENTS.c.journey_key == "console_demo",
                    ENROLLMENTS.c.step_id == step,
                    ENROLLMENTS.c.state == "active",
                )
            ).scalar_one()
        )
    return counts


def _shown_counts(page: str, step: str) -> dict[str, int]:
    row = re.search(rf'<tr><td><a href="#step-{step}">.*?</small></td><td.*?</tr>', page)
    assert row is not None, step
    shown = {}
    for text in re.findall(r">([a-z_ ]+ \d+)</(?:a|span)>", row.group(0)):
        label, number = text.rsplit(" ", 1)
        shown[label] = int(number)
    return {k: v for k, v in shown.items() if v or k in ("entered", "waiting")}


STEPS = ["remind", "test", "text", "bought", "checked_out", "last_chance", "done"]


def test_the_journey_page_draws_the_yaml_with_counts_from_the_store(console: Console) -> None:
    page = console.get("/console/journeys/console_demo").text
    svg = page[page.index("<svg") : page.index("</svg>")]
    for step in STEPS:
        assert f'<g id="step-{step}">' in svg
        assert _shown_counts(page, step) == _expected_counts(console.shop, step), step
    for label in (
        "text 50%",
        "quiet 50%",
        "on order.completed",
        "after 1d",
        "else",
        "if event: checkout.started, within: 2d",
    ):
        assert f">{label}</text>" in svg, label
    assert svg.count('class="edge"') == 9  # every outcome, two to the same step drawn once
    assert "journey ends" not in svg  # every path ends at the exit step
    remind = _shown_counts(page, "remind")  # the story, in numbers
    assert (remind["entered"], remind["skipped no_consent"], remind["converted"]) == (7, 1, 1)
    assert "drawn from</dt><dd>journeys/console_demo.yaml" in page
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_journey_whose_file_broke_is_drawn_from_its_published_version(
    console: Console,
) -> None:
    yaml = console.shop.project / "journeys" / "console_demo.yaml"
    yaml.write_text(yaml.read_text().replace("type: split", "type: splitt"))
    page = console.get("/console/journeys/console_demo").text
    assert "journeys/console_demo.yaml has 1 error(s)" in page
    assert "drawn from</dt><dd>published version 1" in page
    assert '<g id="step-test">' in page and ">quiet 50%</text>" in page
    yaml.unlink()
    page = console.get("/console/journeys/console_demo").text
    assert "drawn from</dt><dd>published version 1" in page and "error(s)" not in page


def _expected_customers(shop: ConsoleShop, step: str, kind: str, reason: str | None) -> set[str]:
    log = JOURNEY_LOG.c
    where = [log.journey_key == "console_demo", log.step_id == step, log.kind == kind]
    if reason is not None:
        where.append(log.reason == reason)
    with shop.engine.connect() as connection:
        return set(connection.execute(select(log.customer_id).where(*where)).scalars())


def test_each_count_links_to_the_customers_behind_it(console: Console) -> None:
    page = console.get("/console/journeys/console_demo").text
    counts = [(h, t) for h, t in _links(page) if "/customers?" in h and "#" not in h]
    assert len(counts) >= 12
    checked = 0
    for href, text in counts:
        step = re.search(r"step=([a-z_]+)", href)
        code = unquote(re.search(r"count=([^&]+)", href).group(1))  # type: ignore[union-attr]
        sample = console.get(href).text
        shown = _customers_in(sample)
        assert len(shown) == len(re.findall(r">explain</a>", sample))
        if step is None:
            continue  # the journey's totals
        kind, _, reason = code.partition(":")
        if kind in ("sent", "skipped"):
            expected = _expected_customers(console.shop, step.group(1), kind, reason)
        elif kind == "entered":
            expected = _expected_customers(console.shop, step.group(1), "step", None)
        elif kind == "converted":
            expected = _expected_customers(console.shop, step.group(1), "converted", None)
        else:
            continue
        assert shown == expected, (href, text)
        assert len(shown) <= int(text.rsplit(" ", 1)[1])
        for customer in shown:
            path = quote(customer, safe="")
            assert f'href="/console/customers/{path}/explain/console_demo"' in sample
        checked += 1
    assert checked >= 8
    no_consent = console.get(
        "/console/journeys/console_demo/customers?step=remind&count=skipped:no_consent"
    ).text
    assert _customers_in(no_consent) == {"c-2"}
    assert (
        console.http.get("/console/journeys/console_demo/customers?count=bogus").status_code == 400
    )
    assert console.http.get("/console/journeys/nope/customers?count=entered").status_code == 404
    assert console.http.get("/console/journeys/nope").status_code == 404


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_the_console_on_postgresql(store: Engine, tmp_path: Path) -> None:
    with open_console(build_console_shop(store, tmp_path)) as console:
        page = console.get("/console/journeys/console_demo").text
        for step in STEPS:
            assert _shown_counts(page, step) == _expected_counts(console.shop, step), step
        sample = console.get("/console/journeys/console_demo/customers?step=remind&count=converted")
        assert _customers_in(sample.text) == {"c-3"}
        timeline = console.get("/console/customers/c-3").text
        assert "order.completed" in timeline and 'class="tag journey"' in timeline
        explain = console.get(f"/console/customers/{EVIL_PATH}/explain/console_demo").text
        assert "<td>remind</td><td>sent</td><td>email</td>" in explain
        assert EVIL not in explain and SCRIPT not in timeline
        refused = console.anonymous.get("/console/customers/c-3")
        assert refused.status_code == 401 and "c-3" not in refused.text


# --- escaping --------------------------------------------------------------------------------


def test_every_customer_value_is_escaped_on_every_page(console: Console) -> None:
    pages = {
        "customer": console.get(f"/console/customers/{EVIL_PATH}").text,
        "explain": console.get(f"/console/customers/{EVIL_PATH}/explain/console_demo").text,
        "sample": console.get(
            "/console/journeys/console_demo/customers?step=remind&count=entered"
        ).text,
        "search": console.get("/console/?q=" + quote(SCRIPT)).text,
        "journey": console.get("/console/journeys/console_demo").text,
    }
    for name, page in pages.items():
        for value in (SCRIPT, IMAGE, EVIL, "<img", "<script"):
            assert value not in page, (name, value)
    customer = pages["customer"]
    assert f"<td>{escape(SCRIPT)}</td>" in customer  # the attribute, shown as text
    assert f"<td>{escape(IMAGE)}</td>" in customer
    assert "&#34;title&#34;: &#34;&lt;script&gt;document.title=" in customer  # event property
    assert f"<h1>{escape(EVIL)}</h1>" in customer
    assert f"<h1>{escape(EVIL)}<span" in pages["explain"]
    assert f">{escape(EVIL)}</a>" in pages["sample"]
    assert f'value="{escape(SCRIPT)}"' in pages["search"]  # kept in the box, as text
