"""Background work: the consumers of the event outbox, and periodic chores.

``dockyard serve`` runs it in-process by default (``background_work: inline``);
with ``background_work: external`` only ``dockyard worker`` processes do. Any
number of workers may run: each claims a batch of events under a lease, so no
event is handled by two workers at once, and a dead worker's batch is claimed
again once its lease runs out.
"""
