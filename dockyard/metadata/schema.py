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



def Bytewise(length: int) -> sa.types.TypeEngine:
    """A string compared byte by byte (ASCII order): SQLite's default; on PostgreSQL ``COLLATE "C"``."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


# Names, tags and digests are compared byte by byte so listings are in ASCII order.
Name = Bytewise(255)
TagName = Bytewise(128)
DigestColumn = Bytewise(140)
Timestamp = sa.DateTime(timezone=True)

# Facts about the installation itself (its tenant id).
installation = sa.Table(
    "installation",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# The installation's tenant and subscriptions (ARM's top level). One tenant per installation.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # a GUID
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, server_default="Enabled"),
    sa.Column("created_at", Timestamp, nullable=False),
)

resource_groups = sa.Table(
    "resource_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("subscription_id", sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(90), nullable=False),
    sa.Column("name_lower", Bytewise(90), nullable=False),
    sa.Column("location", sa.String(64), nullable=False),
    sa.Column("tags", sa.JSON),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("subscription_id", "name_lower"),
)

registries = sa.Table(
    "registries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("name_lower", Bytewise(50), nullable=False, unique=True),
    sa.Column("sku", sa.String(20), nullable=False, server_default="Basic"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("resource_group_id", sa.ForeignKey("resource_groups.id", ondelete="CASCADE")),
    sa.Column("location", sa.String(64), nullable=False, server_default="local"),
    sa.Column("admin_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    # Admin passwords must be shown again (listCredentials), so they are sealed, not hashed.
    sa.Column("admin_password1", sa.Text),
    sa.Column("admin_password2", sa.Text),
    sa.Column("anonymous_pull", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("public_network_access", sa.String(16), nullable=False, server_default="Enabled"),
    sa.Column("network_rule_set", sa.JSON),  # {"defaultAction": "Allow"|"Deny", "ipRules": [{"action", "value"}]}
    sa.Column("role_assignment_mode", sa.String(40), nullable=False, server_default="LegacyRegistryPermissions"),
    sa.Column("policies", sa.JSON),
    sa.Column("tags", sa.JSON),
    sa.Column("properties", sa.JSON),  # other ARM properties, stored as given
    sa.Column("provisioning_state", sa.String(20), nullable=False, server_default="Succeeded"),
    sa.Column("updated_at", Timestamp),
)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("registry_id", sa.ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", Name, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("delete_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("write_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("list_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("read_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    # Goes up with every change of the repository's tags or of a manifest's list_enabled, in the
    # same transaction: the database's own triggers bump it (migration 0007), whoever writes.
    sa.Column("tag_version", sa.BigInteger, nullable=False, server_default="0"),
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
    sa.Column("updated_at", Timestamp),
    sa.Column("delete_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("write_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("list_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("read_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.UniqueConstraint("repository_id", "digest"),
    sa.Index(None, "repository_id", "subject"),
    sa.Index(None, "repository_id", "updated_at"),
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
    sa.Column("name", TagName, primary_key=True),
    sa.Column("digest", DigestColumn, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("delete_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("write_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("list_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("read_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index(None, "repository_id", "digest"),
    sa.Index(None, "repository_id", "updated_at"),
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
    # The digest's running state after `size` bytes (dockyard.core.hashstate), so that
    # whichever node receives the next chunk continues the hash without re-reading.
    sa.Column("hash_state", sa.LargeBinary),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # `open` and `completing` uploads are expired by `updated_at`; the tombstones of ids used up,
    # cancelled or expired (`done`, `cancelled`, `expired`) are forgotten by `created_at`.
    sa.Index(None, "state", "created_at"),
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
    sa.Column("tag", TagName),
    sa.Column("media_type", sa.String(255)),
    sa.Column("size", sa.BigInteger),
    sa.Column("actor", sa.String(255)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", Timestamp),
    sa.Column("processed_at", Timestamp),
    sa.Index(None, "processed_at", "id"),
)

# Users, service principals and the bootstrap owner. `object_id` is the GUID that role
# assignments name; a service principal signs in with `app_id` and a client secret.
principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),  # owner | user | sp
    sa.Column("secret_hash", sa.String(255)),  # a user's password (argon2id)
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("object_id", sa.String(36), unique=True),
    sa.Column("app_id", sa.String(36), unique=True),
    sa.Column("display_name", sa.String(255)),
    sa.Column("external_issuer", sa.String(512)),
    sa.Column("external_subject", sa.String(255)),
    sa.UniqueConstraint("external_issuer", "external_subject"),
)

client_secrets = sa.Table(
    "client_secrets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("principal_id", sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key_id", sa.String(36), nullable=False, unique=True),
    sa.Column("display_name", sa.String(255)),
    sa.Column("hint", sa.String(8)),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Index(None, "principal_id"),
)

role_assignments = sa.Table(
    "role_assignments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the assignment's name (a GUID)
    sa.Column("scope", sa.String(1024), nullable=False),
    sa.Column("scope_lower", sa.String(1024), nullable=False),
    sa.Column("role_definition_id", sa.String(36), nullable=False),
    sa.Column("principal_object_id", sa.String(36), nullable=False),
    sa.Column("principal_type", sa.String(32), nullable=False),
    sa.Column("condition", sa.Text),
    sa.Column("condition_version", sa.String(8)),
    sa.Column("description", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(36)),
    sa.Index(None, "principal_object_id"),
    sa.Index(None, "scope_lower"),
)

scope_maps = sa.Table(
    "scope_maps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("registry_id", sa.ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", Bytewise(50), nullable=False),
    sa.Column("description", sa.String(256)),
    sa.Column("actions", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("registry_id", "name"),
)

# Repository-scoped (non-Entra) tokens: a name, a scope map and two passwords.
registry_tokens = sa.Table(
    "registry_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("registry_id", sa.ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", Bytewise(50), nullable=False),
    sa.Column("scope_map", sa.String(50), nullable=False),
    sa.Column("status", sa.String(10), nullable=False, server_default="enabled"),
    sa.Column("password1_hash", sa.String(255)),
    sa.Column("password1_created", Timestamp),
    sa.Column("password1_expiry", Timestamp),
    sa.Column("password2_hash", sa.String(255)),
    sa.Column("password2_created", Timestamp),
    sa.Column("password2_expiry", Timestamp),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("registry_id", "name"),
)

# Long-running ARM operations (Azure-AsyncOperation), so any node can answer a poll.
operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("error", sa.JSON),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
)

# The repository events log, in the shape of ACR's ContainerRegistryRepositoryEvents: one row
# per outbox event, written by the audit consumer (dockyard/worker/audit.py). `event_id` is
# unique, so an event is logged once even if two workers ever handled it.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer, nullable=False, unique=True),
    sa.Column("registry_id", sa.Integer, nullable=False),
    sa.Column("time", Timestamp, nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),  # Push, Delete, Untag, ...
    sa.Column("repository", Name, nullable=False),
    sa.Column("tag", TagName),
    sa.Column("digest", DigestColumn),
    sa.Column("media_type", sa.String(255)),
    sa.Column("size", sa.BigInteger),
    sa.Column("identity", sa.String(255)),
    sa.Index(None, "registry_id", "time"),
)
