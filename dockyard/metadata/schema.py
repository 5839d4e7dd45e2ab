"""The metadata schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it.

Everything is per registry from the start: repositories belong to a registry,
and everything else hangs off a repository. Blobs are shared, content-addressed
and visible to a repository only through ``repository_blobs``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Names and tags are compared byte by byte so listings are in ASCII order.
Name = sa.String(255)
DigestColumn = sa.String(140)
Timestamp = sa.DateTime(timezone=True)

registries = sa.Table(
    "registries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("name_lower", sa.String(50), nullable=False, unique=True),
    sa.Column("sku", sa.String(20), nullable=False, server_default="Basic"),
    sa.Column("created_at", Timestamp, nullable=False),
)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("registry_id", sa.ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", Name, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("registry_id", "name"),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", DigestColumn, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

repository_blobs = sa.Table(
    "repository_blobs",
    metadata,
    sa.Column("repository_id", sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("digest", sa.ForeignKey("blobs.digest"), primary_key=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "digest"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("repository_id", sa.ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    sa.Column("digest", DigestColumn, nullable=False),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("artifact_type", sa.String(255)),
    sa.Column("config_media_type", sa.String(255)),
    sa.Column("subject", DigestColumn),
    sa.Column("annotations", sa.JSON),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("repository_id", "digest"),
    sa.Index(None, "repository_id", "subject"),
)

# What a manifest points at: its config and layers (kind "blob") or, for an
# index, its child manifests (kind "manifest").
manifest_references = sa.Table(
    "manifest_references",
    metadata,
    sa.Column("manifest_id", sa.ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("digest", DigestColumn, primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),
    sa.Index(None, "digest"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("repository_id", sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("digest", DigestColumn, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index(None, "repository_id", "digest"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("registry_id", sa.ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("repository", Name, nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("state", sa.String(16), nullable=False, server_default="open"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# The outbox: every change of content, written in the same transaction as the change.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("registry_id", sa.Integer, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("repository", Name, nullable=False),
    sa.Column("digest", DigestColumn),
    sa.Column("tag", sa.String(128)),
    sa.Column("media_type", sa.String(255)),
    sa.Column("size", sa.BigInteger),
    sa.Column("actor", sa.String(255)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", Timestamp),
    sa.Column("processed_at", Timestamp),
    sa.Index(None, "processed_at", "id"),
)

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("secret_hash", sa.String(255)),
    sa.Column("created_at", Timestamp, nullable=False),
)
