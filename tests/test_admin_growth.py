"""The panel's webhook endpoint, broadcast and promo code pages over HTTP (#13, #14): every
bad input answers with its reason and changes nothing (no 500 for any of it), each change
writes one audit row saying who, what and before → after (never a secret), and the JSON
endpoints the broadcasts page polls answer junk calmly."""

from __future__ import annotations

import json
from typing import Any

from satshare.audit import repository as audit_repository
from satshare.promos.models import CODE_MAX_LENGTH
from satshare.staff.models import Role
from tests.adminkit import Panel, admin_user
from tests.conftest import Stack

#: (form, what the page says) for the new-endpoint form; the stack is not a sandbox.
BAD_ENDPOINTS: list[tuple[dict[str, str], str]] = [
    ({"all_events": "on"}, "Give the URL that receives the events"),
    ({"url": "http://crm.example.com/hooks", "all_events": "on"}, "absolute https:// URL"),
    ({"url": "https://user:pw@crm.example.com/", "all_events": "on"}, "user name or password"),
    ({"url": "https://crm.example.com/hooks"}, "Choose at least one event"),
    ({"url": "crm.example.com", "all_events": "on"}, "absolute https:// URL"),
]
BAD_BROADCASTS: list[tuple[dict[str, str], str]] = [
    ({"text": "hi"}, "Choose who gets the message."),
    ({"kind": "everyone", "text": "hi"}, "Choose who gets the message."),
    ({"kind": "expiring", "text": "hi"}, "Give the number of days"),
    ({"kind": "expiring", "days": "abc", "text": "hi"}, "Give the number of days"),
    ({"kind": "expiring", "days": "99999", "text": "hi"}, "Give the number of days"),
    ({"kind": "language", "text": "hi"}, "Choose the language."),
    ({"kind": "all", "language": "de", "text": "hi"}, "Choose the language."),
    ({"kind": "active", "plan_id": "nope", "text": "hi"}, "unknown plan"),
    ({"kind": "all"}, "Write the message."),
    ({"kind": "all", "text": "<b>open"}, "never closed"),
    ({"kind": "all", "text": "<script>x</script>"}, "is not allowed"),
    ({"kind": "all", "text": "x" * 4097}, "Telegram allows 4096"),
    ({"kind": "all", "text": "hi", "photo": "not a photo"}, "photo must be"),
    ({"kind": "all", "text": "hi", "button_text_1": "Go"}, "Button 1: give both"),
    ({"kind": "all", "text": "hi", "button_text_1": "Go", "button_url_1": "ftp://x"}, "URL"),
    ({"kind": "all", "text": "hi", "send_at": "tomorrow"}, "give a date and time"),
    ({"kind": "all", "text": "hi", "send_at": "0001-01-01T00:00"}, "give a date and time"),
]
BAD_PROMOS: list[tuple[dict[str, str], str]] = [
    ({"code": "x", "kind": "percent", "value": "10"}, "3 to 32 letters"),
    ({"code": "NO SPACES", "kind": "percent", "value": "10"}, "3 to 32 letters"),
    ({"code": "GOOD", "kind": "free", "value": "10"}, "Choose what the code gives."),
    ({"code": "GOOD", "kind": "percent", "value": "0"}, "from 1 to 100"),
    ({"code": "GOOD", "kind": "percent", "value": "abc"}, "from 1 to 100"),
    ({"code": "GOOD", "kind": "fixed_sats", "value": "-5"}, "at least 1"),
    ({"code": "GOOD", "kind": "extra_days", "value": "100000"}, "Extra days are 1 to"),
    ({"code": "GOOD", "kind": "percent", "value": "10", "max_uses": "0"}, "Max uses"),
    (
        {
            "code": "GOOD",
            "kind": "percent",
            "value": "10",
            "valid_from": "2026-12-02T00:00",
            "valid_until": "2026-12-01T00:00",
        },
        "must be after its start",
    ),
]


async def test_bad_input_is_explained_and_changes_nothing(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    async with Panel(stack) as panel:
        assert (await panel.login("olga")).status_code == 302
        before = await stack.counts()
        for path, cases in (
            ("/admin/desk/webhooks/create", BAD_ENDPOINTS),
            ("/admin/desk/broadcasts/create", BAD_BROADCASTS),
            ("/admin/desk/promo-codes/create", BAD_PROMOS),
        ):
            for form, fragment in cases:
                answer = await panel.post(path, form)
                assert answer.status_code == 422, (path, form, answer.status_code)
                assert fragment in answer.text, (path, form)
                # What was typed comes back in the form.
                assert 'id="form-problem"' in answer.text
        # Actions on what does not exist: a notice on the page, never a 500.
        for path, then, fragment in (
            ("/admin/desk/broadcasts/999/send", "/admin/desk/broadcasts", "does not exist"),
            ("/admin/desk/broadcasts/abc/cancel", "/admin/desk/broadcasts", "does not exist"),
            ("/admin/desk/broadcasts/999/preview", "/admin/desk/broadcasts", "admin chat"),
            ("/admin/desk/promo-codes/NOPE/disable", "/admin/desk/promo-codes", "NOPE"),
            ("/admin/desk/webhooks/999/test", "/admin/desk/webhooks/999", "does not exist"),
            (
                "/admin/desk/webhooks/99999999999999999999999/rotate",
                "/admin/desk/webhooks/0",
                "does not exist",
            ),
            ("/admin/desk/webhooks/7/deliveries/x/replay", "/admin/desk/webhooks/7", "exist"),
            ("/admin/desk/webhooks/7/replay-range", "/admin/desk/webhooks/7", "both ends"),
        ):
            answer = await panel.post(path)
            assert answer.status_code == 303, (path, answer.status_code)
            assert answer.headers["location"].endswith(then), path
            assert fragment in await panel.notices("/admin/desk/ledger"), path
        for path in ("/admin/desk/webhooks/abc", "/admin/desk/webhooks/999"):
            answer = await panel.get(path)
            assert answer.status_code == 404 and "No such webhook endpoint." in answer.text
        counted = await panel.get("/admin/desk/broadcasts-count", params={"kind": "nope"})
        assert counted.status_code == 422 and counted.json()["problem"]
        counted = await panel.get(
            "/admin/desk/broadcasts-count", params={"kind": "active", "plan_id": "nope"}
        )
        assert counted.status_code == 422 and "unknown plan" in counted.json()["problem"]
        counted = await panel.get("/admin/desk/broadcasts-count", params={"kind": "all"})
        assert counted.json()["recipients"] == 0
        progress = await panel.get(
            "/admin/desk/broadcasts-progress", params={"ids": "abc,-1,0,999,9" * 300}
        )
        assert progress.status_code == 200 and progress.json() == {}
        assert await stack.counts() == before


def _events(rows: Any) -> dict[str, Any]:
    return {e.action: e for e in rows}


async def test_a_manager_makes_each_change_with_its_audit_row(stack: Stack) -> None:
    await admin_user(stack, "max", Role.MANAGER)
    async with Panel(stack) as panel:
        await panel.login("max")
        created = await panel.post(
            "/admin/desk/webhooks/create",
            {
                "url": "https://crm.example.com/hooks",
                "description": "CRM",
                "enabled": "on",
                "event_payment.settled": "on",
            },
        )
        assert created.status_code == 303
        page = await panel.get(created.headers["location"].removeprefix(stack.url))
        secret = page.text.split('id="new-secret">', 1)[1].split("<", 1)[0]
        assert secret.startswith("whsec_")
        [endpoint] = (await stack.client.get("/api/v1/webhook-endpoints")).json()
        endpoint_id = endpoint["endpoint_id"]
        assert (await panel.post(f"/admin/desk/webhooks/{endpoint_id}/disable")).status_code == 303
        # A disabled endpoint is sent no test event: refused, and nothing recorded.
        await panel.post(f"/admin/desk/webhooks/{endpoint_id}/test")
        assert "is disabled" in await panel.notices(f"/admin/desk/webhooks/{endpoint_id}")
        await panel.post(f"/admin/desk/webhooks/{endpoint_id}/rotate")
        rotated = (await panel.get(f"/admin/desk/webhooks/{endpoint_id}")).text
        new_secret = rotated.split('id="new-secret">', 1)[1].split("<", 1)[0]
        assert new_secret.startswith("whsec_") and new_secret != secret

        await panel.post(
            "/admin/desk/promo-codes/create",
            {"code": "week", "kind": "extra_days", "value": "7", "once_per_user": "on"},
        )
        duplicate = await panel.post(
            "/admin/desk/promo-codes/create", {"code": "WEEK", "kind": "percent", "value": "5"}
        )
        assert duplicate.status_code == 422 and "already exists" in duplicate.text
        # The form's field takes what a code can be: the one limit the server keeps.
        assert (
            f'maxlength="{CODE_MAX_LENGTH}" pattern="[A-Za-z0-9_\\-]{{3,{CODE_MAX_LENGTH}}}"'
            in duplicate.text
        )
        await panel.post("/admin/desk/promo-codes/WEEK/disable")

        await panel.post(
            "/admin/desk/broadcasts/create", {"kind": "never_paid", "language": "ru", "text": "x"}
        )
        listed = (await stack.client.get("/api/v1/broadcasts")).json()["items"]
        [broadcast] = listed
        assert broadcast["segment"] == {"kind": "never_paid", "language": "ru"}
        assert broadcast["created_by"] == "admin:max"
        await panel.post(f"/admin/desk/broadcasts/{broadcast['broadcast_id']}/cancel")

    async with stack.db.reading() as session:
        rows = await audit_repository.search(session, limit=100)
    assert sorted(e.action for e in rows if e.action != "admin.login") == [
        "broadcast.cancel",
        "broadcast.create",
        "promo.create",
        "promo.disable",
        "webhook.create",
        "webhook.disable",
        "webhook.rotate_secret",
    ]
    events = _events(rows)
    assert all(e.actor == "max" and e.role == "manager" for e in rows)
    assert events["webhook.create"].target == f"webhook-endpoint:{endpoint_id}"
    assert events["webhook.create"].after == {
        "url": "https://crm.example.com/hooks",
        "events": ["payment.settled"],
        "enabled": True,
        "description": "CRM",
    }
    assert events["webhook.disable"].before == {"enabled": True}
    assert events["webhook.disable"].after == {"enabled": False}
    assert events["promo.create"].after["kind"] == "extra_days"  # type: ignore[index]
    assert events["promo.disable"].before == {"active": True}
    assert events["promo.disable"].after == {"active": False}
    assert events["broadcast.cancel"].after["status"] == "canceled"  # type: ignore[index]
    everything = json.dumps([[e.before, e.after] for e in rows])
    assert secret not in everything and new_secret not in everything
