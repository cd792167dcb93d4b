"""The manager's cockpit: Nudge's pipeline, rules, reps and models in a browser.

``nudge ui`` serves it (:mod:`cockpit.server`). It reads the record through
:class:`crm.reads.Reads` and the model registry, and writes nothing. Pages are
server-rendered HTML with no script; charts are SVG drawn on the server.
"""
