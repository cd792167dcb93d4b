"""Every text a playbook author reads, in one place.

Checks, the loader and the CLI format their problems from here, so the wording
stays consistent and each message names what to change. Keep them short: they
are printed after ``file:line:column:``.
"""

from __future__ import annotations

UNKNOWN_FIELD = "unknown field `{field}`"
UNKNOWN_KEY = "unknown key `{key}`"
MISSING_KEY = "missing required key `{key}`"
UNKNOWN_TYPE = "unknown type `{value}`; one of: {options}"
UNKNOWN_TYPE_HINT = "unknown type `{value}` — did you mean `{suggestion}`?"
MISSING_TYPE = "missing `type` (what kind of trigger or action this is)"
NOT_A_CONDITION = "a condition is a mapping with `field`, `all`, `any`, `not` or `expr`"
ONE_OPERATOR = "write exactly one operator for `{field}` (one of {ops}); got {count}"
BEFORE_OR_AFTER = "write `before` or `after`, not both"
NO_PLAYBOOKS = "no playbook files found"
DID_YOU_MEAN = "did you mean `{suggestion}`?"
KNOWN_ROOTS = "fields start with one of: {roots}"
NOT_YAML = "not valid YAML: {problem}"
TOO_LARGE = "file is larger than {limit} bytes; split it into several playbooks"
NO_ALIASES = "YAML anchors and aliases (&name / *name) are not supported; write the value out"
NOT_A_MAPPING = "a playbook must be a mapping with name, owner, version and rules"
CANNOT_READ = "cannot read: {reason}"
DUPLICATE_RULE = "rule id `{rule}` is used twice in this playbook; rule ids must be unique"
DUPLICATE_PLAYBOOK = "playbook name `{name}` is also used by {other}; names must be unique"
EXPR_SYNTAX = "expression does not parse: {problem}"
EXPR_FORBIDDEN = "expressions may not use {what}; use fields, comparisons, and/or/not, {functions}"
EXPR_FUNCTION = "unknown function `{name}`; available: {functions}"
TEMPLATE_SYNTAX = "template does not parse: {problem}"
TEMPLATE_RENDER = "template fails on a sample lead: {problem}"
UNKNOWN_FILTER = "unknown filter `{name}`"
TEMPLATE_SANDBOX = "template tries to reach Python internals: {problem}"
SMS_TOO_LONG = (
    "a sample SMS is {chars} characters = {segments} {encoding} segments (more than 2); "
    "shorten the template{emoji}"
)
SMS_UCS2_HINT = " or drop non-GSM characters such as {chars!r}, which halve the segment size"
BAD_DURATION = "`{value}` is not a duration; write e.g. 15m, 4h, 3d or 2w"
DURATION_UNIT = "`{value}` has no unit; write e.g. {value}d, {value}h, {value}m or {value}s"
SCORE_UNIT = "`{value}` is not a score; scores are 0–1: write `{pct}` or `{frac}`"
BAD_SCORE = "`{value}` is not a score; write a percent such as `70%` or a fraction such as `0.7`"
COUNT_BOUND = "a count needs `at_least` or `at_most` (or both)"
BAD_TIME = "`{value}` is not a time of day; write HH:MM, e.g. 08:30"
BAD_ZONE = "unknown time zone `{value}`; write `rep` or an IANA name such as Europe/Paris"
BAD_EVENT_TYPE = "unknown event type `{value}`"
ESCALATE_WITHOUT_NUDGE = "`escalate` needs an earlier `nudge` step in the same rule to wait on"
TEAM_NAME = "write `owner`, `manager` or `team:<name>`"
WAIT_LAST = "a `wait` as the last step does nothing; add the steps to run after it"

NO_EVALUATION = (
    "no evaluation of {what} for lead {lead}: no signal its trigger listens to has arrived "
    "(or the lead is unknown, or its evaluations are older than the ones kept)"
)
EVAL_FAILED = "rule failed on this signal and was skipped"
RELOAD_REFUSED = "playbook file refused; the last good version keeps running"
REFUSED_NOT_RUNNING = "playbook file refused; it is not running"
RELOAD_LOADED = "playbook file loaded"
RELOAD_REMOVED = "playbook file removed; its playbook stopped"
