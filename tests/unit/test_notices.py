"""Notices: which causes open a notice, when it is resolved, and what is sent where and when (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.domain.notices import (
    WEBHOOK_LISTED,
    Channel,
    HeldPoll,
    Notice,
    NoticeFacts,
    NoticeKind,
    NoticePlan,
    NoticePolicy,
    OpenQuestion,
    PollFailures,
    Send,
    digest_due,
    email_text,
    plan_notices,
    webhook_payload,
)

# 10:00 in Amsterdam (winter, UTC+1): after the default digest hour of 08:00.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
BOTH = NoticePolicy(channels=frozenset(Channel))


def question(nmbrs_id: int = 101, asked: timedelta = timedelta(hours=1), entity: str = "employee") -> OpenQuestion:
    return OpenQuestion(
        entity=entity,  # type: ignore[arg-type]
        nmbrs_id=nmbrs_id,
        name="Anna van der Berg",
        company_name="Bakkerij De Zon B.V.",
        asked_at=NOW - asked,
    )


def recorded_after(plan: NoticePlan, recorded: list[Notice] = [], sent: bool = False) -> list[Notice]:  # noqa: B006
    """The open notices as the store holds them after recording `plan` (and, if `sent`, after every send)."""
    kept = [n for n in recorded if n.key not in plan.resolved]
    notices = kept + list(plan.opened)
    if sent:
        sent_keys = {(s.channel, k) for s in plan.sends for k in s.keys}
        notices = [
            n.model_copy(
                update={
                    "emailed_at": n.emailed_at or (NOW if (Channel.EMAIL, n.key) in sent_keys else None),
                    "webhook_at": n.webhook_at or (NOW if (Channel.WEBHOOK, n.key) in sent_keys else None),
                }
            )
            for n in notices
        ]
    return notices


def test_a_new_question_opens_one_notice_linking_to_the_question() -> None:
    plan = plan_notices(NoticeFacts(questions=(question(),)), [], NOW, NoticePolicy())
    (notice,) = plan.opened
    assert notice.key == "new_question:employee:101" and notice.kind is NoticeKind.NEW_QUESTION
    assert notice.subject == "employee:101" and notice.link == "/vragen/employee/101"
    assert "Anna van der Berg" in notice.title and "Bakkerij De Zon" in notice.title
    assert notice.opened_at == NOW and plan.resolved == () and plan.sends == ()


def test_the_same_facts_twice_open_nothing_new() -> None:
    facts = NoticeFacts(questions=(question(),), held=HeldPoll(poll_id="p1", started_at=NOW))
    first = plan_notices(facts, [], NOW, BOTH)
    again = plan_notices(facts, recorded_after(first, sent=True), NOW + timedelta(minutes=1), BOTH, NOW)
    assert len(first.opened) == 2
    assert again.nothing, again


def test_an_answered_question_resolves_its_notices() -> None:
    old = question(asked=timedelta(days=4))
    first = plan_notices(NoticeFacts(questions=(old, question(102))), [], NOW, NoticePolicy())
    assert {n.key for n in first.opened} == {
        "new_question:employee:101",
        "question_waiting:employee:101",
        "new_question:employee:102",
    }
    later = plan_notices(NoticeFacts(questions=(question(102),)), recorded_after(first), NOW, NoticePolicy())
    assert later.resolved == ("new_question:employee:101", "question_waiting:employee:101")
    assert later.opened == ()


def test_a_question_waiting_longer_than_the_setting_gets_a_notice_of_its_own() -> None:
    policy = NoticePolicy(question_waiting_days=3)
    young = plan_notices(NoticeFacts(questions=(question(asked=timedelta(days=2, hours=23)),)), [], NOW, policy)
    assert [n.kind for n in young.opened] == [NoticeKind.NEW_QUESTION]
    old = plan_notices(NoticeFacts(questions=(question(asked=timedelta(days=3)),)), [], NOW, policy)
    waiting = next(n for n in old.opened if n.kind is NoticeKind.QUESTION_WAITING)
    assert waiting.key == "question_waiting:employee:101" and "3 dagen" in waiting.title


def test_a_held_poll_is_one_notice_however_many_polls_are_held_and_resolves_when_released() -> None:
    first = plan_notices(
        NoticeFacts(held=HeldPoll(poll_id="p1", started_at=NOW, reasons=("40 of 100 employees removed",))),
        [],
        NOW,
        NoticePolicy(),
    )
    (held,) = first.opened
    assert held.key == "mass_change_held" and "40 of 100 employees removed" in held.message
    next_poll = plan_notices(
        NoticeFacts(held=HeldPoll(poll_id="p2", started_at=NOW)), recorded_after(first), NOW, NoticePolicy()
    )
    assert next_poll.nothing
    released = plan_notices(NoticeFacts(), recorded_after(first), NOW, NoticePolicy())
    assert released.resolved == ("mass_change_held",)


def test_polls_failing_make_a_notice_only_from_the_configured_count() -> None:
    policy = NoticePolicy(poll_failures=3)
    two = PollFailures(count=2, since=NOW - timedelta(minutes=10), last_reasons=("TimeoutError: ",))
    assert plan_notices(NoticeFacts(poll_failures=two), [], NOW, policy).opened == ()
    three = two.model_copy(update={"count": 3})
    plan = plan_notices(NoticeFacts(poll_failures=three), [], NOW, policy)
    (notice,) = plan.opened
    assert notice.kind is NoticeKind.POLL_FAILING and "3 keer" in notice.title and "TimeoutError" in notice.message
    recovered = plan_notices(NoticeFacts(), recorded_after(plan), NOW, policy)
    assert recovered.resolved == ("poll_failing",)


def test_no_channel_configured_sends_nothing() -> None:
    plan = plan_notices(NoticeFacts(questions=(question(),)), [], NOW, NoticePolicy())
    assert plan.opened and plan.sends == ()


def test_a_held_mass_change_is_emailed_at_once_and_questions_wait_for_the_digest() -> None:
    facts = NoticeFacts(questions=(question(),), held=HeldPoll(poll_id="p1", started_at=NOW))
    email = NoticePolicy(channels=frozenset({Channel.EMAIL}))
    # The digest went out at 08:00 today: only the held poll goes now.
    today = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    plan = plan_notices(facts, [], NOW, email, last_digest_at=today)
    assert plan.sends == (Send(channel=Channel.EMAIL, digest=False, keys=("mass_change_held",)),)
    # The next morning at 08:00 Dutch time the question goes in the digest; the held poll is not sent twice.
    tomorrow = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    after = plan_notices(facts, recorded_after(plan, sent=True), tomorrow, email, last_digest_at=today)
    assert after.sends == (Send(channel=Channel.EMAIL, digest=True, keys=("new_question:employee:101",)),)


def test_the_webhook_gets_every_unsent_notice_at_once_in_one_post() -> None:
    facts = NoticeFacts(questions=(question(101), question(102)))
    webhook = NoticePolicy(channels=frozenset({Channel.WEBHOOK}))
    plan = plan_notices(facts, [], NOW, webhook)
    assert plan.sends == (
        Send(channel=Channel.WEBHOOK, digest=False, keys=("new_question:employee:101", "new_question:employee:102")),
    )


def test_a_failed_send_is_planned_again_and_a_resolved_notice_is_never_sent() -> None:
    facts = NoticeFacts(questions=(question(101), question(102)))
    webhook = NoticePolicy(channels=frozenset({Channel.WEBHOOK}))
    first = plan_notices(facts, [], NOW, webhook)
    unsent = recorded_after(first)  # the POST failed: nothing marked sent
    retry = plan_notices(NoticeFacts(questions=(question(102),)), unsent, NOW, webhook)
    assert retry.resolved == ("new_question:employee:101",)
    assert retry.sends == (Send(channel=Channel.WEBHOOK, digest=False, keys=("new_question:employee:102",)),)


def test_an_empty_digest_is_still_planned_so_the_day_counts_as_done() -> None:
    email = NoticePolicy(channels=frozenset({Channel.EMAIL}))
    plan = plan_notices(NoticeFacts(), [], NOW, email, last_digest_at=None)
    assert plan.sends == (Send(channel=Channel.EMAIL, digest=True, keys=()),)


def test_the_digest_is_due_once_a_day_at_the_dutch_hour() -> None:
    amsterdam_8 = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)  # 08:00 in winter
    assert digest_due(amsterdam_8, None, 8)
    assert not digest_due(amsterdam_8 - timedelta(minutes=1), amsterdam_8 - timedelta(hours=20), 8)
    assert digest_due(amsterdam_8, amsterdam_8 - timedelta(hours=20), 8)
    assert not digest_due(amsterdam_8 + timedelta(hours=5), amsterdam_8, 8)
    summer_8 = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)  # 08:00 in summer (UTC+2)
    assert digest_due(summer_8, summer_8 - timedelta(days=1), 8)
    assert not digest_due(summer_8 - timedelta(minutes=1), summer_8 - timedelta(days=1), 8)


def test_email_and_webhook_texts_name_each_notice_with_its_link() -> None:
    plan = plan_notices(NoticeFacts(questions=(question(),)), [], NOW, NoticePolicy())
    notices = list(plan.opened)
    subject, body = email_text(Send(channel=Channel.EMAIL, digest=True, keys=()), notices, "https://hr.example.nl/")
    assert subject == "Nmbrs Sync: 1 nieuwe melding"
    assert "https://hr.example.nl/vragen/employee/101" in body and notices[0].title in body
    payload = webhook_payload(notices, None)
    assert payload["notices"][0]["key"] == "new_question:employee:101"
    assert payload["notices"][0]["url"] == "/vragen/employee/101"
    assert "Anna van der Berg" in payload["text"]


def test_a_webhook_message_for_many_notices_lists_a_few_and_counts_the_rest() -> None:
    many = tuple(question(100 + n) for n in range(WEBHOOK_LISTED + 5))
    notices = list(plan_notices(NoticeFacts(questions=many), [], NOW, NoticePolicy()).opened)
    payload = webhook_payload(notices, "https://hr.example.nl")
    assert "en nog 5 andere, zie https://hr.example.nl/meldingen" in payload["text"]
    assert len(payload["notices"]) == WEBHOOK_LISTED + 5


def test_every_notice_kind_has_a_dutch_label_in_the_catalogue() -> None:
    from worker.entrypoints.web.catalogue import catalogue

    texts = catalogue().texts
    assert [kind.value for kind in NoticeKind if f"notices.kind_{kind.value}" not in texts] == []
