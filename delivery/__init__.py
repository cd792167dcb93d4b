"""Delivery: the one place that decides whether, when and where a nudge goes.

``policy`` holds the pure decisions (:func:`decide`, :func:`retry_delay`);
``sender`` carries them out through the outbox and a notifier
(:func:`deliver_batch`, :func:`drain_due`).
"""

from delivery.policy import Decision, Policy, Rep, decide, retry_delay
from delivery.sender import SNOOZED, Outcome, RetryPolicy, deliver, deliver_batch, drain_due

__all__ = [
    "SNOOZED",
    "Decision",
    "Outcome",
    "Policy",
    "Rep",
    "RetryPolicy",
    "decide",
    "deliver",
    "deliver_batch",
    "drain_due",
    "retry_delay",
]
