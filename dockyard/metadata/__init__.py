"""Metadata: the database schema, connections and migrations."""
