"""A small website that sells a SatShare plan (the example of issue #14).

- ``/``: the plans, read from SatShare, and a sign-up form; ``/?ref=CODE`` keeps the
  affiliate's referral code through the sign-up.
- ``POST /signup``: registers the customer at SatShare (platform ``website``, with the
  referral code), then shows their account page.
- ``POST /account/{id}/pay``: asks SatShare for a subscription invoice and sends the browser
  to SatShare's checkout page.
- ``POST /webhooks/satshare``: SatShare's signed events (Standard Webhooks). The signature
  is checked on the raw body with the ``standardwebhooks`` library before anything is
  written; ``payment.settled`` marks the customer paid.

Configuration, from the environment:

    SATSHARE_URL             http://127.0.0.1:8000
    SATSHARE_API_KEY         a key bound to the website platform with the write scope
                             (satshare api-key create --name website --scopes write
                             --platform website)
    SATSHARE_WEBHOOK_SECRET  whsec_... of the webhook endpoint pointing at /webhooks/satshare
    SITE_DATABASE            site.db (SQLite file for the site's own customers)

Run it with ``python examples/website/app.py`` (port 8080, or ``SITE_PORT``).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import closing
from typing import Any

import httpx
from jinja2 import DictLoader, Environment, select_autoescape
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Satoshi Weekly</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f4ef; color: #222; }
  main { max-width: 44rem; margin: 0 auto; padding: 1.5rem; }
  h1 { font-size: 1.6rem; margin: .2rem 0 1rem; }
  .card { background: #fff; border-radius: 12px; padding: 1rem 1.2rem; margin: 0 0 1rem;
          box-shadow: 0 1px 3px #0002; }
  .plans { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); }
  .price { font-size: 1.3rem; font-weight: 700; }
  label { display: block; margin: .6rem 0 .2rem; }
  input { font: inherit; padding: .5rem; width: 100%; box-sizing: border-box;
          border: 1px solid #bbb; border-radius: 8px; }
  button { font: inherit; background: #f7931a; color: #fff; border: 0; border-radius: 8px;
           padding: .6rem 1.1rem; margin-top: .8rem; cursor: pointer; }
  .note { color: #666; font-size: .9rem; }
  .paid { color: #17803d; font-weight: 700; }
  .error { color: #b00020; }
</style></head>
<body><main>
<p class="note">Satoshi Weekly · a private Telegram channel, paid in bitcoin</p>
{% block body %}{% endblock %}
</main></body></html>
"""

HOME = """{% extends "page" %}{% block body %}
<h1>Join Satoshi Weekly</h1>
<div class="plans">
{% for plan in plans %}
  <div class="card plan" data-plan="{{ plan.subscription_type }}">
    <strong>{{ plan.title }}</strong>
    <div class="price">{{ plan.shown_price }}</div>
    <div class="note">{{ plan.duration_days }} days · {{ plan.description }}</div>
  </div>
{% endfor %}
</div>
<form class="card" method="post" action="/signup">
  <h2>Sign up</h2>
  {% if error %}<p class="error">{{ error }}</p>{% endif %}
  <label for="name">Your name</label>
  <input id="name" name="name" required maxlength="64" autocomplete="name">
  <input type="hidden" name="ref" value="{{ ref }}">
  {% if ref %}<p class="note" id="referred">Invited with code <b>{{ ref }}</b>.</p>{% endif %}
  <button id="signup" type="submit">Create my account</button>
</form>
{% endblock %}"""

ACCOUNT = """{% extends "page" %}{% block body %}
<h1>Hello, {{ customer.name }}</h1>
{% if error %}<p class="error" id="error">{{ error }}</p>{% endif %}
<div class="card">
  {% if customer.paid %}
    <p class="paid" id="status">Paid: your membership is active. See you in the channel!</p>
  {% else %}
    <p id="status">Not paid yet.</p>
  {% endif %}
  <p class="note">Your own invite code: <b id="code">{{ customer.referral_code }}</b> · share
  <code>{{ share_url }}</code> and earn a share of every sale it brings.</p>
</div>
{% for plan in plans %}
<form class="card" method="post" action="/account/{{ customer.id }}/pay">
  <strong>{{ plan.title }}</strong>
  <input type="hidden" name="plan" value="{{ plan.subscription_type }}">
  <button class="pay" type="submit">Pay with bitcoin</button>
</form>
{% endfor %}
{% endblock %}"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    satshare_user_id INTEGER UNIQUE,
    referral_code TEXT,
    paid INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS seen_webhooks (webhook_id TEXT PRIMARY KEY);
"""

templates = Environment(
    loader=DictLoader({"page": PAGE, "home": HOME, "account": ACCOUNT}),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def render(title: str, template: str, **values: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(template).render(title=title, **values))


def problem_detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return f"SatShare answered {answer.status_code}"


def shown_price(plan: dict[str, Any]) -> str:
    if plan["price_sats"]:
        return f"{plan['price_sats']:,} sats"
    return f"{plan['price']['amount']} {plan['price']['currency']}"


class Site:
    def __init__(self, satshare_url: str, api_key: str, webhook_secret: str, database: str):
        self.satshare = httpx.AsyncClient(
            base_url=satshare_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        self.webhook = Webhook(webhook_secret)
        self.database = database
        with closing(self.db()) as db:
            db.executescript(SCHEMA)

    def db(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.database)
        connection.row_factory = sqlite3.Row
        return connection

    async def plans(self) -> list[dict[str, Any]]:
        answer = await self.satshare.get("/api/v1/subscriptions/types")
        answer.raise_for_status()
        plans: list[dict[str, Any]] = answer.json()
        return [{**plan, "shown_price": shown_price(plan)} for plan in plans]

    async def home(self, request: Request) -> Response:
        ref = request.query_params.get("ref", "")[:32]
        return render("Join", "home", plans=await self.plans(), ref=ref, error=None)

    async def signup(self, request: Request) -> Response:
        form = await request.form()
        name = str(form.get("name", "")).strip()[:64]
        ref = str(form.get("ref", "")).strip()[:32]
        if not name:
            return render("Join", "home", plans=await self.plans(), ref=ref, error="Enter a name.")
        body: dict[str, Any] = {
            "username": name,
            "platform": "website",
            # SatShare keeps one user per external_id for ever: a random one, not this site's
            # row number, which starts at 1 again with a new SITE_DATABASE (409 then).
            "external_id": f"site-{secrets.token_hex(8)}",
        }
        if ref:
            body["referral_id"] = ref
        answer = await self.satshare.post("/api/v1/users", json=body)
        if answer.status_code == 422 and ref:  # an unknown code: sign up without it
            del body["referral_id"]
            answer = await self.satshare.post("/api/v1/users", json=body)
        if answer.is_error:  # a problem+json: its detail says what went wrong
            error = f"Sign-up failed: {problem_detail(answer)}"
            return render("Join", "home", plans=await self.plans(), ref=ref, error=error)
        user = answer.json()
        with closing(self.db()) as db, db:
            customer_id = db.execute(
                "INSERT INTO customers (name, satshare_user_id, referral_code) VALUES (?, ?, ?)",
                (name, user["user_id"], user["referral_code"]),
            ).lastrowid
        return RedirectResponse(f"/account/{customer_id}", status_code=303)

    def customer(self, request: Request) -> sqlite3.Row | None:
        with closing(self.db()) as db:
            row: sqlite3.Row | None = db.execute(
                "SELECT * FROM customers WHERE id = ?", (request.path_params["id"],)
            ).fetchone()
        return row

    async def account(self, request: Request, error: str | None = None) -> Response:
        customer = self.customer(request)
        if customer is None:
            return HTMLResponse("No such account.", status_code=404)
        share_url = f"{request.base_url}?ref={customer['referral_code']}"
        return render(
            "Account",
            "account",
            customer=customer,
            plans=await self.plans(),
            share_url=share_url,
            error=error,
        )

    async def pay(self, request: Request) -> Response:
        customer = self.customer(request)
        if customer is None:
            return HTMLResponse("No such account.", status_code=404)
        form = await request.form()
        answer = await self.satshare.post(
            "/api/v1/subscriptions",
            json={
                "user_id": customer["satshare_user_id"],
                "subscription_type": str(form.get("plan", ""))[:64],
            },
        )
        if answer.is_error:  # e.g. 502: the payment processor did not answer; try again
            error = f"No invoice this time: {problem_detail(answer)}"
            return await self.account(request, error=error)
        return RedirectResponse(answer.json()["invoice"]["checkout_url"], status_code=303)

    async def webhook_in(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = self.webhook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        with closing(self.db()) as db, db:
            # At least once: the same webhook-id may come again; act on it once.
            new = db.execute(
                "INSERT OR IGNORE INTO seen_webhooks VALUES (?)", (request.headers["webhook-id"],)
            ).rowcount
            if new and event["type"] == "payment.settled":
                db.execute(
                    "UPDATE customers SET paid = 1 WHERE satshare_user_id = ?",
                    (event["data"]["user_id"],),
                )
        return JSONResponse({"ok": True})


def build_app(site: Site) -> Starlette:
    return Starlette(
        routes=[
            Route("/", site.home),
            Route("/signup", site.signup, methods=["POST"]),
            Route("/account/{id:int}", site.account),
            Route("/account/{id:int}/pay", site.pay, methods=["POST"]),
            Route("/webhooks/satshare", site.webhook_in, methods=["POST"]),
        ]
    )


def from_environment() -> Starlette:
    return build_app(
        Site(
            satshare_url=os.environ.get("SATSHARE_URL", "http://127.0.0.1:8000"),
            api_key=os.environ["SATSHARE_API_KEY"],
            webhook_secret=os.environ["SATSHARE_WEBHOOK_SECRET"],
            database=os.environ.get("SITE_DATABASE", "site.db"),
        )
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(from_environment(), host="127.0.0.1", port=int(os.environ.get("SITE_PORT", "8080")))
