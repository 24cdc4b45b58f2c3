"""User filters run in sandboxes, fed and drained by a runner outside them (issue 17).

- :mod:`.sandbox`: the bubblewrap command line, rlimits, cgroups and usage of one sandbox;
- :mod:`.process`: one sandboxed filter process, spoken to with the line protocol;
- :mod:`.supervisor`: restarts with backoff, the give-up limit, and the filter's status;
- :mod:`.runner`: the Kafka side: consume the granted input topic, produce the outputs,
  commit offsets after the outputs are acknowledged.

The filter never sees Kafka, the broker's settings or its credentials: only alerts through
its pipe. The SDK the filter imports is :mod:`brokerapp.userfilter` (stdlib only).
"""
