"""The top floor: the Faust app, topics, agents, web views, the CLI and the embedded broker.

The only package that knows Kafka and Faust. Agents are thin: they decode, call a
pure function from ``scoring``, ``playbooks``, ``notifiers`` or ``crm``, and hand
the result on.
"""
