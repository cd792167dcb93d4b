"""The catalogue of the playbook language: every trigger, condition and action kind.

Each kind lives in one module of ``playbooks/triggers/``, ``playbooks/conditions/``
or ``playbooks/actions/``: its schema (a pydantic model whose validators are its
load-time checks), how it evaluates (methods on the model), and its docs (the
model's docstring and one example, given to :func:`register`). The packages build
their discriminated unions from this registry, and the reference page
(:mod:`playbooks.reference`) is generated from it, so adding a kind is one new
module and nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, Field

Role = Literal["trigger", "condition", "action"]
ROLES: tuple[Role, ...] = ("trigger", "condition", "action")
M = TypeVar("M", bound=type[BaseModel])


@dataclass(frozen=True)
class Kind:
    """One kind of the language, as the reference page shows it."""

    role: Role
    name: str
    model: type[BaseModel]
    example: str
    """A YAML snippet of this kind, as written in a playbook (checked by a test)."""

    @property
    def summary(self) -> str:
        """The model's docstring: the first paragraph says what the kind does."""
        return inspect.cleandoc(self.model.__doc__ or "").strip()


_KINDS: dict[Role, dict[str, Kind]] = {role: {} for role in ROLES}


def register(role: Role, name: str, example: str) -> Callable[[M], M]:
    """Class decorator: add a model to the catalogue under ``role`` / ``name``."""

    def add(model: M) -> M:
        if name in _KINDS[role]:
            raise ValueError(f"{role} kind `{name}` registered twice")
        _KINDS[role][name] = Kind(role, name, model, inspect.cleandoc(example))
        return model

    return add


def arrange(role: Role, names: tuple[str, ...]) -> None:
    """Put ``role``'s kinds in the order a reader should meet them (reference, hints).

    ``names`` must be exactly the registered kinds, so a new kind module that is not
    listed (or a listed one that was never imported) fails at import, not silently.
    """
    registered = _KINDS[role]
    if sorted(names) != sorted(registered):
        missing = sorted(set(registered) - set(names))
        extra = sorted(set(names) - set(registered))
        raise ValueError(f"{role} kinds out of step: not listed {missing}, not registered {extra}")
    _KINDS[role] = {name: registered[name] for name in names}


def kinds(role: Role) -> list[Kind]:
    """The kinds of ``role`` in registration order (the order the packages import them)."""
    return list(_KINDS[role].values())


def models(role: Role) -> tuple[type[BaseModel], ...]:
    return tuple(k.model for k in _KINDS[role].values())


def union(role: Role) -> Any:
    """The pydantic type of any kind of ``role``: a union of its models told apart by ``type``."""
    return Annotated[Union[models(role)], Field(discriminator="type")]  # noqa: UP007
