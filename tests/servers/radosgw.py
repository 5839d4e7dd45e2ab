"""radosgw for the tests: started once per session (to be written)."""
