"""A large ledger for the dashboard's benchmark: N calls over 90 days, in three projects of unequal size.

The shape is a busy team's: one project makes 80% of the calls, 2,000 users of very unequal activity, a dozen
models on three providers, 20 labels, 10 keys per project, 60% of the calls in threads of about five turns,
3% failures, streamed calls with a time to first chunk. Messages are written for the last day's threads only
(the thread page reads one thread at a time, by index, whatever the ledger's size).

Both backends are seeded through the store's own write path, in batches of 5,000, roll-ups included; the
rate it reaches is reported with the figures.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from relaygate.store import CallRecord, MessageRecord, Store

__all__ = ["PROJECTS", "calls", "seed"]

SPAN = timedelta(days=90)
PROJECTS = [("proj-main", 0.80), ("proj-b", 0.15), ("proj-c", 0.05)]
MODELS = [
    ("openai", "gpt-4o", 2.5, 10.0), ("openai", "gpt-4o-mini", 0.15, 0.6), ("openai", "gpt-4.1", 2.0, 8.0),
    ("openai", "gpt-4.1-mini", 0.4, 1.6), ("openai", "o3-mini", 1.1, 4.4), ("openai", "o4-mini", 1.1, 4.4),
    ("anthropic", "claude-sonnet-4", 3.0, 15.0), ("anthropic", "claude-3-5-haiku", 0.8, 4.0),
    ("anthropic", "claude-opus-4", 15.0, 75.0), ("gemini", "gemini-2.5-flash", 0.3, 2.5),
    ("gemini", "gemini-2.5-pro", 1.25, 10.0), ("gemini", "gemini-2.0-flash", 0.1, 0.4),
]  # fmt: skip
USERS = 2000
LABELS = [f"label-{i}" for i in range(20)]
BATCH = 5000


def _zipf(rng: random.Random, n: int) -> int:
    # Heavy users first: rank r is drawn with weight ~1/r.
    return min(n - 1, int(math.exp(rng.random() * math.log(n + 1))) - 1)


def calls(n: int, now: datetime, *, seed: int = 1) -> Iterator[tuple[CallRecord, list[MessageRecord]]]:
    """``n`` calls, oldest first, each with the messages it adds (only for the last day's threads)."""
    rng = random.Random(seed)
    start = now - SPAN
    step = SPAN / n
    open_threads: dict[str, list[str]] = {p: [] for p, _ in PROJECTS}
    for i in range(n):
        pick = rng.random()
        project = PROJECTS[0][0] if pick < 0.80 else PROJECTS[1][0] if pick < 0.95 else PROJECTS[2][0]
        provider, model, price_in, price_out = MODELS[_zipf(rng, len(MODELS))]
        started = start + step * i + timedelta(microseconds=rng.randrange(1000))
        latency = rng.lognormvariate(math.log(900), 0.8)
        status = 200 if rng.random() > 0.03 else rng.choice([429, 500, 502, 503])
        prompt = int(rng.lognormvariate(math.log(600), 1.0))
        completion = int(rng.lognormvariate(math.log(200), 0.9)) if status == 200 else 0
        thread = None
        if rng.random() < 0.6:
            threads = open_threads[project]
            if not threads or rng.random() < 0.2:
                threads.append(uuid.UUID(int=rng.getrandbits(128)).hex[:16])
                if len(threads) > 50:
                    threads.pop(0)
            thread = rng.choice(threads)
        stream = rng.random() < 0.5
        call = CallRecord(
            project_id=project,
            trace_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            started_at=started,
            ended_at=started + timedelta(milliseconds=latency),
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            thread_id=thread,
            label=LABELS[_zipf(rng, len(LABELS))] if rng.random() < 0.7 else None,
            key_id=f"key_{project[-1]}{rng.randrange(10):011d}",
            user_id=f"user-{_zipf(rng, USERS)}" if rng.random() < 0.9 else None,
            requested_model=f"{provider}/{model}",
            model=model,
            provider=provider,
            provider_kind=provider,
            stream=stream,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cached_tokens=prompt // 3 if rng.random() < 0.2 else 0,
            cost_usd=round((prompt * price_in + completion * price_out) / 1e6, 9) if status == 200 else None,
            status=status,
            error=None if status == 200 else "upstream_error",
            latency_ms=latency,
            ttft_ms=latency * rng.uniform(0.1, 0.4) if stream else None,
        )
        messages: list[MessageRecord] = []
        if thread is not None and now - started < timedelta(days=1):
            messages = [
                MessageRecord(project_id=project, thread_id=thread, role="user", created_at=started,
                              content=f"question {i}", call_id=call.id),
                MessageRecord(project_id=project, thread_id=thread, role="assistant", created_at=call.ended_at,
                              position=1, content=f"answer {i}", call_id=call.id, model=model),
            ]  # fmt: skip
        yield call, messages


async def seed(store: Store, n: int, now: datetime) -> float:
    """Write ``n`` calls through the store's own write path (roll-ups and all); returns calls written a second."""
    began = time.perf_counter()
    batch: list[CallRecord] = []
    batch_messages: list[MessageRecord] = []
    for call, messages in calls(n, now):
        batch.append(call)
        batch_messages.extend(messages)
        if len(batch) >= BATCH:
            await store.write(batch, batch_messages)
            batch, batch_messages = [], []
    await store.write(batch, batch_messages)
    return n / (time.perf_counter() - began)
