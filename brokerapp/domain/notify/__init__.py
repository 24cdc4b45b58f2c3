"""Notifications of annotated alerts: VOEvents, emails and webhooks (pure functions).

:mod:`.notices` turns what the watchlist and crossmatch branches write into one
:class:`~.notices.Notice` per annotated alert; :mod:`.subscriptions` reads who wants which;
:mod:`.voevent`, :mod:`.email` and :mod:`.webhooks` build the packets, messages and payloads.
Nothing here does I/O: the adapters send, the runtime schedules.
"""
