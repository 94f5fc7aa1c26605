"""The engine of script routers: JavaScript run in V8 (mini-racer), with a time and a memory limit.

A script defines ``route({request, headers, models, metrics})`` and returns where the request goes. It
runs in an embedded V8 isolate, which has no I/O at all: no network, no files, no clock beyond ``Date``,
no modules (``require``, ``import``, ``fetch`` and ``process`` are not there). Each script gets an engine
of its own (an isolate), kept for the next calls of the same script and the same project, so that one
script can never see or change another's globals; the engines of scripts carried by requests are
kept in a small least-recently-used set and closed when pushed out.

A call runs in a worker thread: V8 runs off the event loop, which goes on serving other requests while
a script runs, and stops the script at ``timeout_ms`` (V8's own termination) or when its heap passes
``max_memory_mb``. An engine whose script was stopped is closed and made again on the next call.

The engines' threads must be closed before the interpreter exits (an open one blocks the exit):
:meth:`ScriptEngine.close` does it at the gateway's shutdown, and an ``atexit`` hook, registered when
the first engine is made, does it for a process that never shut its gateway down.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from relaygate.settings.scripts import ENGINE_MISSING

__all__ = ["ScriptEngine", "ScriptError", "ScriptFailure"]

# Engines of request-carried scripts kept at once (each an isolate of a few MiB).
MAX_REQUEST_ENGINES = 16
# What the engine's JSON of route()'s answer may weigh.
MAX_RESULT_CHARS = 65_536

# route() is defined by the script inside a function of its own, so that a top-level const or let does
# not clash with the next definition, and the script's top level runs once, within the time limit.
_DEFINE = "globalThis.__relaygate_route = (function () {{\n{script}\n;return route;\n}})();"
_MISSING = "typeof globalThis.__relaygate_route !== 'function'"
_CALL = "JSON.stringify(globalThis.__relaygate_route({payload}) ?? null)"


@dataclass(frozen=True, slots=True)
class ScriptFailure:
    """Why a script gave no usable answer: ``kind`` is ``error``, ``timeout``, ``memory``, ``invalid``
    or ``unavailable`` (the engine is not installed)."""

    kind: str
    message: str


class ScriptError(Exception):
    """A script that threw, ran too long or out of memory, or answered something that is no route."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.failure = ScriptFailure(kind, message)


class _Engine:
    """One V8 isolate with one script's route() defined in it."""

    def __init__(self, script: str, *, timeout_s: float, max_memory: int) -> None:
        try:
            from py_mini_racer import MiniRacer  # imported on first use: V8 loads only for a gateway with scripts
        except ImportError:
            raise ScriptError("unavailable", f"cannot run here: {ENGINE_MISSING}") from None

        self.racer = MiniRacer()
        self.lock = threading.Lock()
        self.closed = False
        try:
            self.racer.set_hard_memory_limit(max_memory)
            self._eval(_DEFINE.format(script=script), timeout_s)
            if self.racer.eval(_MISSING):
                raise ScriptError("error", "does not define a function route({request, headers, models, metrics})")
        except BaseException:
            self.close()
            raise

    def call(self, payload: bytes, timeout_s: float) -> Any:
        with self.lock:
            if self.closed:
                raise _Closed()
            answer = self._eval(_CALL.format(payload=payload.decode()), timeout_s)
        if not isinstance(answer, str) or len(answer) > MAX_RESULT_CHARS:
            raise ScriptError("invalid", "returned something that is not a route")
        return orjson.loads(answer)

    def _eval(self, code: str, timeout_s: float) -> Any:
        from py_mini_racer import JSEvalException, JSOOMException, JSParseException, JSTimeoutException

        try:
            return self.racer.eval(code, timeout_sec=timeout_s)
        except JSTimeoutException:
            # V8 is told to stop the script but answers later: a call queued behind it returns once it has,
            # so that the engine may be closed without V8 answering into a closed one.
            with suppress(Exception):
                self.racer.eval("0", timeout_sec=1)
            raise ScriptError("timeout", f"ran past its time limit ({timeout_s * 1000:g} ms) and was stopped") from None
        except JSOOMException:
            raise ScriptError("memory", "ran past its memory limit and was stopped") from None
        except JSParseException as exc:
            raise ScriptError("error", f"is not valid JavaScript: {_first_line(exc)}") from None
        except JSEvalException as exc:
            if self.racer.was_hard_memory_limit_reached():
                raise ScriptError("memory", "ran past its memory limit and was stopped") from None
            raise ScriptError("error", f"threw {_first_line(exc)}") from None

    def close(self) -> None:
        self.closed = True
        self.racer.close()


class _Closed(Exception):
    """The engine was closed (its script ran out of memory in another call) while this call waited for it."""


class ScriptEngine:
    """Runs script routers: one V8 engine per script (and project), calls made in worker threads.

    ``run`` is the only entry point; ``close`` ends every engine (the gateway's shutdown calls it).
    """

    def __init__(self, *, max_request_engines: int = MAX_REQUEST_ENGINES) -> None:
        self.max_request_engines = max_request_engines
        self._engines: OrderedDict[tuple[str, str, int], _Engine] = OrderedDict()
        self._pinned: set[tuple[str, str, int]] = set()
        self._lock = threading.Lock()
        self._hooked = False

    async def run(
        self,
        owner: str,
        script: str,
        argument: dict[str, Any],
        *,
        timeout_ms: float,
        max_memory_mb: int,
        pinned: bool = False,
    ) -> Any:
        """The value ``route(argument)`` returns, as JSON data; raises :class:`ScriptError`.

        ``owner`` keeps engines apart (``router:<name>`` for a named router, ``project:<id>`` for a
        request's own script); ``pinned`` engines (named routers) are never pushed out.
        """
        payload = orjson.dumps(argument, default=str)
        return await anyio.to_thread.run_sync(
            self.run_sync, owner, script, payload, timeout_ms / 1000, max_memory_mb * 1024 * 1024, pinned
        )

    def run_sync(
        self, owner: str, script: str, payload: bytes, timeout_s: float, max_memory: int, pinned: bool = False
    ) -> Any:
        """:meth:`run` in the calling thread, which must run no event loop: mini-racer binds an engine made in
        a thread with a running loop to that loop, where its time limit cannot apply."""
        if _loop_running():
            raise RuntimeError("ScriptEngine.run_sync runs in a worker thread; from async code, await run()")
        key = (owner, script, max_memory)
        engine = self._engine(key, timeout_s, pinned)
        try:
            try:
                return engine.call(payload, timeout_s)
            except _Closed:
                engine = self._engine(key, timeout_s, pinned)  # made afresh; closed again only past its limit
                try:
                    return engine.call(payload, timeout_s)
                except _Closed:
                    raise ScriptError("memory", "ran past its memory limit and was stopped") from None
        except ScriptError as error:
            if error.failure.kind == "memory":
                # Its heap is full: the next call starts afresh. (A script stopped at its time limit keeps its
                # engine: V8 is told to stop it while the call is still in flight, and closing the engine
                # then would leave V8 answering an engine that is gone.)
                self._drop(key, engine)
            raise

    def _engine(self, key: tuple[str, str, int], timeout_s: float, pinned: bool) -> _Engine:
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
        made = _Engine(key[1], timeout_s=timeout_s, max_memory=key[2])
        pushed_out: list[_Engine] = []
        with self._lock:
            if not self._hooked:
                atexit.register(self.close)
                self._hooked = True
            engine = self._engines.setdefault(key, made)
            if pinned:
                self._pinned.add(key)
            unpinned = [k for k in self._engines if k not in self._pinned]
            for old in unpinned[: max(0, len(unpinned) - self.max_request_engines)]:
                pushed_out.append(self._engines.pop(old))
        if engine is not made:
            pushed_out.append(made)  # another thread made it first
        for old_engine in pushed_out:
            with old_engine.lock:
                old_engine.close()
        return engine

    def _drop(self, key: tuple[str, str, int], engine: _Engine) -> None:
        with self._lock:
            if self._engines.get(key) is engine:
                del self._engines[key]
        with engine.lock:
            engine.close()

    def close(self) -> None:
        """Close every engine (and its thread); the next call makes them again."""
        with self._lock:
            engines = list(self._engines.values())
            self._engines.clear()
            self._pinned.clear()
        for engine in engines:
            engine.close()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _first_line(exc: Exception) -> str:
    """V8's message without the source excerpt and stack it adds: ``Error: boom``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # "<anonymous>:3: Error: boom" then the source line, a caret, an empty line and the message again.
    for line in lines:
        if line.startswith("<anonymous>:"):
            return line.split(": ", 1)[-1][:300]
    return (lines[0] if lines else type(exc).__name__)[:300]
