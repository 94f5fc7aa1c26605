"""A ledger to look at: calls of two projects over the last days, with errors, retries, guards and threads.

Written straight into the store (:func:`seed`), then served by ``relaygate serve`` with :func:`config`; the
browser tests add calls of their own through the gateway, so both ways of getting into the ledger are seen.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from relaygate.keys import key_digest, key_id
from relaygate.store import CallRecord, MessageRecord, open_store

KEY_A = "rg-ui-test-key-project-a"
KEY_B = "rg-ui-test-key-project-b"
ADMIN_KEY = "rg-ui-test-admin-key"
KEY_ID_A = key_id(key_digest(KEY_A))
KEY_ID_B = key_id(key_digest(KEY_B))
SECRET = "a-session-secret-for-the-dashboard-tests"

MODELS = [("mock", "echo", 1.0, 2.0), ("openai", "gpt-4o-mini", 0.15, 0.6), ("anthropic", "claude-sonnet-4", 3.0, 15.0)]
USERS = ["ada", "grace", "linus", None]
LABELS = ["chat", "summarize", "search", None]
QUESTIONS = [
    "How do I reset my password? My email is [EMAIL].",
    "Summarize the meeting notes from Monday.",
    "Which plan fits a team of five?",
    "Translate 'good morning' into French.",
]


def config(database: str, *, trace_url: str, refresh_seconds: int = 2) -> str:
    return f"""\
database: "{database}"
admin_key: "{ADMIN_KEY}"
prices:
  mock/echo: {{input: 1.0, output: 2.0}}
  mock/backup: {{input: 0.5, output: 1.0}}
guards:
  no_pii: {{type: pii, stage: input, action: redact}}
models:
  smart:
    strategy: fallback
    description: echo first, then the backup
    targets: [{{model: mock/echo}}, {{model: mock/backup}}]
projects:
  - id: proj-a
    name: Project A
    keys: ["{KEY_A}"]
    guards: [no_pii]
    limits:
      requests_per_minute: 600
      usd_per_day: 50
      users:
        ada: {{usd_per_day: 5}}
  - id: proj-b
    keys: ["{KEY_B}"]
ui:
  trace_url: "{trace_url}"
  refresh_seconds: {refresh_seconds}
  session_secret: "{SECRET}"
"""


def records(now: datetime, *, rng: random.Random | None = None) -> tuple[list[CallRecord], list[MessageRecord]]:
    """About 200 calls over the last five days (none in the last five minutes), and their threads' messages."""
    rng = rng or random.Random(21)
    calls: list[CallRecord] = []
    messages: list[MessageRecord] = []
    for i in range(200):
        project = "proj-b" if i % 5 == 4 else "proj-a"
        provider, model, price_in, price_out = MODELS[i % 3]
        started = now - timedelta(minutes=5 + i * 35 + rng.randrange(20))
        latency = 150 + rng.random() * 2500 + (4000 if i % 17 == 0 else 0)
        status = 429 if i % 23 == 5 else 500 if i % 31 == 7 else 200
        prompt, completion = 40 + rng.randrange(900), 10 + rng.randrange(400) if status == 200 else 0
        thread = f"{project}-thread-{i // 6}" if i % 3 != 2 else None
        attempts = []
        if i % 11 == 3:
            attempts = [
                {"provider": "mock", "model": "echo", "status": 503, "error": "upstream_error", "duration_ms": 812.5},
                {"provider": provider, "model": model, "status": status, "error": None, "duration_ms": latency - 812},
            ]
        guards = []
        if project == "proj-a":
            redactions = 1 if thread and i % 6 == 0 else 0
            guards = [{"id": "no_pii", "type": "pii", "stage": "input", "action": "redact", "passed": not redactions,
                       "reason": "found email" if redactions else None, "error": None, "redactions": redactions,
                       "model": None, "cost_usd": None}]  # fmt: skip
        call = CallRecord(
            project_id=project,
            trace_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            started_at=started,
            ended_at=started + timedelta(milliseconds=latency),
            thread_id=thread,
            run_id=f"run-{i // 4}",
            label=LABELS[i % 4],
            tags={"team": "support"} if i % 2 else {},
            key_id=KEY_ID_A if project == "proj-a" else KEY_ID_B,
            user_id=USERS[i % 4],
            requested_model="smart" if attempts else f"{provider}/{model}",
            model=model,
            provider=provider,
            provider_kind=provider,
            stream=i % 2 == 0,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cached_tokens=prompt // 4 if i % 4 == 1 else 0,
            reasoning_tokens=completion // 3 if provider == "anthropic" else 0,
            cost_usd=None if status != 200 else round((prompt * price_in + completion * price_out) / 1e6, 9),
            status=status,
            error="upstream_error" if status >= 500 else "rate_limited" if status == 429 else None,
            latency_ms=latency,
            ttft_ms=latency / 5 if i % 2 == 0 else None,
            guards=guards,
            attempts=attempts,
        )
        calls.append(call)
        if thread is None:
            continue
        question = QUESTIONS[(i // 6) % 4] if i % 6 == 0 else f"And a follow-up question, number {i}?"
        messages.append(
            MessageRecord(project_id=project, thread_id=thread, role="user", created_at=started, content=question,
                          call_id=call.id)
        )  # fmt: skip
        if status == 200:
            messages.append(
                MessageRecord(project_id=project, thread_id=thread, role="assistant", created_at=call.ended_at,
                              position=1, content=f"Here is answer {i}.", call_id=call.id, model=model,
                              cost_usd=call.cost_usd)
            )  # fmt: skip
    return calls, messages


async def seed(database: str, now: datetime | None = None) -> tuple[list[CallRecord], list[MessageRecord]]:
    calls, messages = records(now or datetime.now(UTC))
    async with open_store(database) as store:
        await store.write(calls, messages)
    return calls, messages


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def figures(calls: list[CallRecord], project: str) -> dict[str, Any]:
    mine = [c for c in calls if c.project_id == project]
    return {"requests": len(mine), "errors": sum(1 for c in mine if c.failed)}
