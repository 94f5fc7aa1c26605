"""Rate limits and budgets that hold under concurrency, across restarts and across gateway processes.

:mod:`~relaygate.limits.config` is the ``limits:`` config; :mod:`~relaygate.limits.estimate` and
:mod:`~relaygate.limits.attachments` bound a request from above, :mod:`~relaygate.limits.worst` takes the worst
case over every model a call may reach and its guards' model calls; :mod:`~relaygate.limits.limiter` reserves
it against the counters (``relaygate.counters``) and settles it to what :mod:`~relaygate.limits.settlement`
says the call used. :class:`~relaygate.middleware.limits.LimitsMiddleware` puts them around each model call.
"""
