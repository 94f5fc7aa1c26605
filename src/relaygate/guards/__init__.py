"""Guards on what goes to a model and what comes back, streams included.

A guard is configured once (``guards: {id: {type, stage, action, parameters}}``), applied by default
to a project's calls (``projects[].guards``) or named per request (``extra.guards``). Types, one module
each: :mod:`.word_count`, :mod:`.regex_guard`, :mod:`.pii`, :mod:`.json_schema`, :mod:`.moderation`,
:mod:`.judge` (``llm_judge``) and :mod:`.custom`. :mod:`.engine` picks and runs them,
:mod:`.stream` runs output guards on streamed answers, and
:class:`~relaygate.middleware.guards.GuardsMiddleware` puts them in front of the proxy.
"""

from __future__ import annotations

from relaygate.guards.base import Guard, GuardFailure
from relaygate.guards.custom import GuardInput
from relaygate.guards.engine import GUARD_TYPES, Guards, Selection
from relaygate.guards.results import GuardResult, Verdict
from relaygate.guards.stream import StreamGuards

__all__ = [
    "GUARD_TYPES",
    "Guard",
    "GuardFailure",
    "GuardInput",
    "GuardResult",
    "Guards",
    "Selection",
    "StreamGuards",
    "Verdict",
]
