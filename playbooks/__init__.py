"""Playbooks: the manager's language, its loader and the pure evaluator.

``load_playbooks(paths)`` validates YAML files (errors name file and line);
``evaluate(signal, playbooks, now)`` returns the commands to issue. Nothing here
sends anything.
"""

from playbooks.evaluator import evaluate
from playbooks.loader import load_playbooks, parse_playbook

__all__ = ["evaluate", "load_playbooks", "parse_playbook"]
