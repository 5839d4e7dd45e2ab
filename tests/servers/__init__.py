"""Real servers the tests start for themselves: PostgreSQL, Azurite, Ceph radosgw.

Each module is a pytest plugin (listed in tests/conftest.py) with session
fixtures that start the server once, on loopback, in a temporary directory,
and can stop and start it again for the fault tests.
"""
