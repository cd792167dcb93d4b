"""Nudge's ground floor: the vocabulary every other package speaks.

Event, signal and command schemas, settings, the clock, the error tree and logging
setup. Nothing here imports any other package of the project.
"""
