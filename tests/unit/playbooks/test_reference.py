"""The reference page is the catalogue: generated from it, and every example loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from playbooks.kinds import ROLES, Kind, kinds
from playbooks.loader import check_text
from playbooks.reference import example_playbook, render_reference

PAGE = Path(__file__).parents[3] / "docs" / "playbook-reference.md"
ALL = [k for role in ROLES for k in kinds(role)]


def test_page_matches_the_catalogue() -> None:
    """Regenerate with `nudge playbooks reference > docs/playbook-reference.md`."""
    assert PAGE.read_text(encoding="utf-8") == render_reference()


def test_reference_command_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["playbooks", "reference"]) == 0
    assert capsys.readouterr().out == render_reference()


@pytest.mark.parametrize("kind", ALL, ids=[f"{k.role}:{k.name}" for k in ALL])
def test_every_example_is_accepted_by_the_loader(kind: Kind) -> None:
    checked = check_text(example_playbook(kind), f"{kind.name}.yaml")
    assert [str(p) for p in checked.problems] == []
    rule = checked.playbook.rules[0]  # type: ignore[union-attr]
    used = {
        "trigger": [rule.trigger.type],
        "condition": [type(c).__name__ for c in rule.conditions],
        "action": [a.type for a in rule.actions],
    }[kind.role]
    assert (kind.model.__name__ if kind.role == "condition" else kind.name) in used


def test_every_kind_is_documented() -> None:
    for kind in ALL:
        assert kind.summary and kind.example, kind.name
        assert f"### `{kind.name}`" in render_reference()
