"""The registry's rules. Services talk to ports (database, blob store), never to HTTP."""
