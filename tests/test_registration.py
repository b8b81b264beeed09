"""First contact (``users.flows.first_contacts``): registration through the unique indexes,
several accounts at once, each answered as it would have been alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from satshare.db import Database
from satshare.errors import InvalidRequest
from satshare.notifications.models import OutboxMessage
from satshare.users import flows, service
from satshare.users import repository as user_repository
from satshare.users.flows import Contact, ReferralProblem
from satshare.users.models import User
from satshare.webhooks_out import service as webhooks
from satshare.webhooks_out.models import WebhookMessage

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.transaction() as session:
        spec = webhooks.EndpointSpec(url="http://127.0.0.1:9/hook", events=["user.created"])
        await webhooks.create_endpoint(session, spec, NOW, allow_insecure=True)
    yield database
    await database.dispose()


def account(
    telegram_id: int, referral: str | None = None, language: str = "en"
) -> service.Registration:
    return service.Registration(
        platform="telegram",
        external_id=str(telegram_id),
        username=f"u{telegram_id}",
        referral=referral,
        language=language,
    )


async def contact(db: Database, registration: service.Registration) -> Contact:
    (answer,) = await flows.first_contacts(db, [registration], NOW)
    assert isinstance(answer, Contact)
    return answer


async def rows(db: Database) -> tuple[list[User], list[str], list[OutboxMessage]]:
    async with db.reading() as session:
        users = list((await session.execute(select(User).order_by(User.id))).scalars())
        events = list(
            (
                await session.execute(
                    select(WebhookMessage.dedupe_key).where(
                        WebhookMessage.event_type == "user.created"
                    )
                )
            ).scalars()
        )
        outbox = list((await session.execute(select(OutboxMessage))).scalars())
    return users, events, outbox


async def test_a_burst_registers_new_users_and_finds_known_ones(db: Database) -> None:
    alice = await contact(db, account(1))
    assert alice.created and alice.referral_problem is None
    code = alice.user.referral_code
    answers = await flows.first_contacts(
        db,
        [
            account(2, referral=code),  # new, invited by alice
            account(3, referral="nosuchcode"),  # new, unknown code
            account(1),  # alice again
            account(1, referral=code),  # alice with her own link
            account(2, referral="nosuchcode"),  # the new user's second update: found
            account(4, language="xx"),  # no such language: its own error
            account(5),
        ],
        NOW,
    )
    assert isinstance(answers[5], InvalidRequest)
    bob, carol, alice_again, alice_own, bob_again, _, dave = answers
    assert isinstance(bob, Contact) and isinstance(carol, Contact) and isinstance(dave, Contact)
    assert (bob.created, bob.referral_problem, bob.user.referrer_id) == (True, None, alice.user.id)
    assert (carol.created, carol.referral_problem, carol.user.referrer_id) == (
        True,
        ReferralProblem.UNKNOWN,
        None,
    )
    assert isinstance(alice_again, Contact) and isinstance(alice_own, Contact)
    assert (alice_again.created, alice_again.referral_problem) == (False, None)
    assert (alice_own.created, alice_own.referral_problem) == (False, ReferralProblem.OWN)
    assert isinstance(bob_again, Contact)
    assert (bob_again.created, bob_again.user.id) == (False, bob.user.id)
    assert bob_again.referral_problem == ReferralProblem.ALREADY
    assert dave.created

    users, events, outbox = await rows(db)
    assert [u.external_id for u in users] == ["1", "2", "3", "5"]
    assert len({u.referral_code for u in users}) == 4
    assert sorted(events) == sorted(f"user:{u.id}:created" for u in users)
    (notice,) = outbox  # alice is told about bob, once
    assert (notice.kind, notice.user_id) == ("referral.registered", alice.user.id)
    async with db.reading() as session:
        assert await user_repository.referral_counts(session, alice.user.id) == (1, 0)


async def test_the_referrer_is_kept_from_the_first_contact(db: Database) -> None:
    alice = await contact(db, account(1))
    erin = await contact(db, account(9))
    # In one burst, and in two: the first contact's code counts, the later one is "already".
    first, second = await flows.first_contacts(
        db, [account(2, alice.user.referral_code), account(2, erin.user.referral_code)], NOW
    )
    assert isinstance(first, Contact) and isinstance(second, Contact)
    assert first.user.referrer_id == alice.user.id
    assert second.referral_problem == ReferralProblem.ALREADY
    later = await contact(db, account(2, referral=erin.user.referral_code))
    assert later.user.referrer_id == alice.user.id and not later.created
    users, _, outbox = await rows(db)
    assert [u.referrer_id for u in users if u.external_id == "2"] == [alice.user.id]
    assert [m.user_id for m in outbox] == [alice.user.id]


async def test_racing_first_contacts_of_one_user_register_once(db: Database) -> None:
    """Separate units of work at once (as two bot processes would): the unique index picks
    one registration; the others find that user, and only one user.created is recorded."""
    answers = await asyncio.gather(*(contact(db, account(7)) for _ in range(8)))
    assert sum(a.created for a in answers) == 1
    assert len({a.user.id for a in answers}) == 1
    users, events, _ = await rows(db)
    assert [u.external_id for u in users] == ["7"]
    assert events == [f"user:{users[0].id}:created"]


async def test_an_account_registered_meanwhile_is_found_not_registered_again(
    db: Database,
) -> None:
    """Another process registered the account between our read and our INSERT: its row
    stands, and nothing more is written for it."""
    other = await contact(db, account(8))
    async with db.transaction() as session:
        ((user, created),) = await service.register_accounts(session, [(account(8), None)], NOW)
    assert (user.id, created) == (other.user.id, False)
    users, events, _ = await rows(db)
    assert len(users) == 1 and len(events) == 1


async def test_a_taken_referral_code_is_drawn_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await contact(db, account(1))
    draws = iter([alice.user.referral_code, alice.user.referral_code, "fresh234"])
    monkeypatch.setattr(service, "new_referral_code", lambda: next(draws))
    bob = await contact(db, account(2))
    assert bob.created and bob.user.referral_code == "fresh234"


async def test_a_user_who_blocked_the_bot_is_reachable_again(db: Database) -> None:
    alice = await contact(db, account(1))
    async with db.transaction() as session:
        await service.mark_unreachable(session, alice.user.id, NOW)
    again = await contact(db, account(1))
    assert not again.created and again.user.unreachable_at is None
    users, _, _ = await rows(db)
    assert users[0].unreachable_at is None
