"""A rule's template is compiled once and rendered many times: each render reads its own time."""

from __future__ import annotations

import datetime as dt

from playbooks.templates import render

NOW = dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC)
TEMPLATE = "{{ lead.company }}: last touch {{ lead.last_touch_at | ago }}"


def test_a_cached_template_reads_the_time_of_each_render() -> None:
    lead = {"company": "Acme", "last_touch_at": "2026-01-05T09:00:00+00:00"}
    assert render(TEMPLATE, {"lead": lead}, now=NOW) == "Acme: last touch 5 days ago"
    later = NOW + dt.timedelta(days=3)
    assert render(TEMPLATE, {"lead": lead}, now=later) == "Acme: last touch 8 days ago"
    other = {"company": "Globex", "last_touch_at": "2026-01-09T09:00:00+00:00"}
    assert render(TEMPLATE, {"lead": other}, now=NOW) == "Globex: last touch yesterday"
