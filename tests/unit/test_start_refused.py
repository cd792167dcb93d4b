"""A playbook refused at start-up is loud: not ready (strict, the default), or listed in
`/ready`, `/metrics` and the log when `NUDGE_PLAYBOOKS_STRICT=false`."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.views import INFORMATIONAL, readiness
from tests.harness import AgentHarness

BROKEN = "name: hot\nowner: o\nversion: 1\nrules:\n  - id: r\n    trigger: {type: score.crossed_above, value: 70}\n    actions: [{type: stop}]\n"


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "hot.yaml").write_text(BROKEN)
    return folder


async def test_strict_start_is_not_ready_and_names_file_and_line(
    tmp_path: Path, broken: Path
) -> None:
    h = AgentHarness(tmp_path, playbooks=[broken])
    try:
        checks = await readiness(h.p)
        ok = all(
            v is True
            for k, v in checks.items()
            if k not in INFORMATIONAL and k not in ("consuming", "intake")  # nothing started
        )
        assert not ok
        [problem] = checks["playbooks"]
        assert problem.startswith(f"{broken / 'hot.yaml'}:6:") and "70%" in problem
    finally:
        await h.close()


async def test_lenient_start_runs_without_it_and_says_so(tmp_path: Path, broken: Path) -> None:
    h = AgentHarness(tmp_path, playbooks=[broken], playbooks_strict=False)
    try:
        checks = await readiness(h.p)
        assert checks["playbooks"] is True
        [problem] = checks["refused"]
        assert "hot.yaml:6:" in problem
        text = h.p.metrics.render().decode()
        assert f'nudge_config_refused{{file="{broken / "hot.yaml"}"}} 1.0' in text
        assert h.p.playbooks == []
    finally:
        await h.close()


async def test_a_fixed_file_makes_the_worker_ready(tmp_path: Path, broken: Path) -> None:
    h = AgentHarness(tmp_path, playbooks=[broken])
    try:
        (broken / "hot.yaml").write_text(BROKEN.replace("value: 70}", "value: 70%}") + "\n")
        h.p.playbook_set.refresh()
        assert (await readiness(h.p))["playbooks"] is True
    finally:
        await h.close()
