"""The runtime layer: the stream machinery each worker runs.

The Faust app factory, the branch runtime (decode once, run a processor chain, send,
dead-letter), processing nodes, the database sink, the gateway's mirror loop and the status
pages. Agents in ``agents/`` are thin wrappers over this layer.
"""
