"""The console's pure functions, run in the browser itself (no Node, no build):
the query bar's grammar, the URL round trip, the stream's backoff and close codes,
token renewal timing and readable problem messages."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

pytestmark = pytest.mark.integration


async def module(page: Page, name: str) -> str:
    """The served URL of a console module (its hashed path, from the page's own script)."""
    await page.goto("/")
    src = await page.get_attribute("script[type=module]", "src")
    assert src and src.endswith("/app.js")
    return src.rsplit("/", 1)[0] + f"/{name}"


async def test_query_text_grammar_and_round_trip(page: Page) -> None:
    url = await module(page, "query.js")
    result = await page.evaluate(
        """async (url) => {
          const q = await import(url);
          const parsed = q.parseQueryText(
            'level:error,warn service:"my app" attributes.stage:prod http://x "a: b" free  text'
          );
          const again = q.parseQueryText(q.formatQueryText(parsed.filters, parsed.q));
          const tricky = q.parseQueryText(q.formatQueryText([], 'service:x "quoted"'));
          return { parsed, again, tricky };
        }""",
        url,
    )
    assert result["parsed"] == {
        "filters": [
            ["level", "ERROR"],
            ["level", "WARN"],
            ["service", "my app"],
            ["attributes.stage", "prod"],
        ],
        "q": "http://x a: b free text",
    }
    assert result["again"] == result["parsed"]
    assert result["tricky"] == {"filters": [], "q": 'service:x "quoted"'}


async def test_url_state_round_trip(page: Page) -> None:
    url = await module(page, "query.js")
    result = await page.evaluate(
        """async (url) => {
          const q = await import(url);
          const s = q.stateFromURL('?tenant=acme&level=ERROR&level=CRITICAL&service=api'
            + '&attributes.stage=prod&q=payment&range=6h&limit=500&live=1&bogus=1');
          const abs = q.stateFromURL('?from=2026-03-01T10:00:00Z&to=2026-03-01T11:00:00Z');
          return { s, back: q.stateToURL(s), abs, absBack: q.stateToURL(abs),
                   params: q.apiParams(abs, q.timeWindow(abs)) };
        }""",
        url,
    )
    s = result["s"]
    assert s["tenant"] == "acme" and s["range"] == "6h" and s["limit"] == 500 and s["live"]
    assert s["filters"] == [
        ["level", "ERROR"],
        ["level", "CRITICAL"],
        ["service", "api"],
        ["attributes.stage", "prod"],
    ]
    assert result["back"] == (
        "?tenant=acme&level=ERROR&level=CRITICAL&service=api&attributes.stage=prod"
        "&q=payment&range=6h&limit=500&live=1"
    )
    assert result["abs"]["range"] is None
    assert result["params"] == [
        ["from", "2026-03-01T10:00:00.000Z"],
        ["to", "2026-03-01T11:00:00.000Z"],
    ]


async def test_stream_backoff_and_close_codes(page: Page) -> None:
    url = await module(page, "tail.js")
    result = await page.evaluate(
        """async (url) => {
          const { LiveTail, backoff } = await import(url);
          const waits = [0, 1, 2, 3, 4, 5, 10].map(
            (n) => [backoff(n, () => 0), backoff(n, () => 1)]);
          const outcome = async (code) => {
            const statuses = [];
            const session = {
              token: 't', renew: async () => false, expired: () => statuses.push('expired'),
            };
            const tail = new LiveTail({
              params: [], session, onEvents() {}, onStatus: (s) => statuses.push(s),
            });
            tail.lastError = 'detail from the error frame';
            await tail.closed(code, '');
            clearTimeout(tail.retryTimer);
            tail.stopped = true;
            return statuses;
          };
          return { waits, slow: await outcome(4408), gone: await outcome(4404),
                   token: await outcome(4401), restart: await outcome(1012) };
        }""",
        url,
    )
    assert result["waits"] == [
        [250, 500],
        [500, 1000],
        [1000, 2000],
        [2000, 4000],
        [4000, 8000],
        [5000, 10000],
        [5000, 10000],
    ]
    (slow,) = result["slow"]
    assert slow["state"] == "reconnecting" and "4408" in slow["notice"]
    (gone,) = result["gone"]
    assert gone["state"] == "error" and "detail from the error frame" in gone["text"]
    assert result["token"][-1] == "expired"  # no secret to renew with: sign in again
    assert result["restart"][0]["state"] == "reconnecting"


async def test_renewal_lead_and_problem_messages(page: Page) -> None:
    session_url = await module(page, "session.js")
    api_url = session_url.replace("session.js", "api.js")
    result = await page.evaluate(
        """async ([sessionUrl, apiUrl]) => {
          const { renewLead } = await import(sessionUrl);
          const { problemMessage } = await import(apiUrl);
          return {
            leads: [renewLead(3600), renewLead(300), renewLead(86400)],
            problem: problemMessage(422, { title: 'Unprocessable Content',
              detail: 'level: unknown level', errors: [{ field: 'level', message: 'unknown level' },
                                                        { field: 'limit', message: 'too big' }] }),
            noBody: problemMessage(502, null),
            offline: problemMessage(0, null),
          };
        }""",
        [session_url, api_url],
    )
    assert result["leads"] == [360, 60, 8640]  # 10% of the lifetime, at least 60 s
    assert result["problem"] == ("Unprocessable Content: level: unknown level (limit: too big)")
    assert result["noBody"] == "The server answered 502."
    assert result["offline"] == "The server could not be reached."
