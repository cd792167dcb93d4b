"""Events replayed through the worker's own decision path, with no broker.

``replay.simulate`` runs a history through the same state, scorer, playbook evaluation
and delivery policy as a worker, on the events' clock: what ``nudge playbooks simulate``
prints and the live-versus-simulate tests compare. It sits above ``playbooks``,
``scoring`` and ``delivery`` because it uses all three; none of them imports it.
"""
