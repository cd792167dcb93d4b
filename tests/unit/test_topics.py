"""The topic list in streams/topics.py is the one definition: the pipeline, the names
the agents use and the README's table all follow it."""

from __future__ import annotations

import re
from pathlib import Path

from streams.pipeline import Pipeline
from streams.topics import ACTIVITY, BY_NAME, CONVERSATIONS, DEAD, INBOUND, REPLIES, TOPICS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_named_topic_is_declared() -> None:
    for name in (*INBOUND, DEAD, ACTIVITY, REPLIES, CONVERSATIONS):
        assert name in BY_NAME, name


def test_every_topic_has_a_pipeline_attribute() -> None:
    for spec in TOPICS:
        assert hasattr(Pipeline, spec.attr), spec


def test_readme_topic_table_lists_exactly_the_declared_topics() -> None:
    rows = re.findall(r"^\| `([a-z.]+)` \|", README.read_text(), flags=re.M)
    assert set(rows) == set(BY_NAME)
