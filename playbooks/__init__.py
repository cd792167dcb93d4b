"""Playbooks: the manager's language, its loader, the pure evaluator and its tools.

``load_playbooks(paths)`` / ``PlaybookSet(paths)`` validate YAML files (errors name
file, line, column and a fix); ``decide(signal, playbooks, now, state=...)`` returns
the commands to issue and the next guard state; ``resume(step, signal, ...)`` runs a
due schedule row. Nothing here sends anything or touches a database.
"""

from playbooks.evaluator import Decision, decide, evaluate, worth_evaluating
from playbooks.guards import GuardState
from playbooks.loader import check_paths, load_playbooks, parse_playbook
from playbooks.registry import PlaybookSet
from playbooks.resume import resume, step_of, timer_signal

__all__ = [
    "Decision",
    "GuardState",
    "PlaybookSet",
    "check_paths",
    "decide",
    "evaluate",
    "load_playbooks",
    "parse_playbook",
    "resume",
    "step_of",
    "timer_signal",
    "worth_evaluating",
]
