"""Rate limits and budgets that hold under concurrency, across restarts and across gateway processes.

:mod:`~relaygate.limits.config` is the ``limits:`` config, :mod:`~relaygate.limits.estimate` the worst case
of a request, :mod:`~relaygate.limits.limiter` the reservations against the counters (``relaygate.counters``);
:class:`~relaygate.middleware.limits.LimitsMiddleware` puts them around each model call.
"""
