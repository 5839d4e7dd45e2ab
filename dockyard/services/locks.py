"""The changeable attributes as locks: what ``writeEnabled``, ``deleteEnabled`` and ``readEnabled`` forbid.

ACR lets a repository, a tag or a manifest be locked (``az acr repository update
--write-enabled false`` and friends). The checks here run inside the caller's
transaction, before anything is changed, so a refused request leaves nothing
behind. ``listEnabled`` only hides items from listings (``services/listings.py``
and ``services/attributes.py``).

- a repository with ``writeEnabled`` false takes no manifest pushes, and neither
  it nor anything in it can be deleted; with ``deleteEnabled`` false nothing in it
  can be deleted;
- a tag with ``writeEnabled`` false can't be moved (pushed to) or deleted; with
  ``deleteEnabled`` false it can't be deleted;
- a manifest with ``writeEnabled`` or ``deleteEnabled`` false can't be deleted,
  nor can a manifest that a locked tag points at (deleting it would delete the tag);
- ``readEnabled`` false on the repository, the tag or the manifest refuses pulls of
  the manifest.
"""

from __future__ import annotations

import sqlalchemy as sa

from dockyard.metadata.database import hot
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.errors import Denied, NameUnknown
from dockyard.metadata.schema import manifests, repositories, tags

# ACR's names of the changeable attributes and the columns that hold them.
ATTRIBUTES = {
    "deleteEnabled": "delete_enabled",
    "writeEnabled": "write_enabled",
    "listEnabled": "list_enabled",
    "readEnabled": "read_enabled",
}

_STATES = {"write_enabled": "write-locked", "delete_enabled": "delete-locked", "read_enabled": "read-locked"}


def disallowed(kind: str, name: str, column: str) -> Denied:
    """The refusal of an operation on a locked repository, tag or manifest (ACR: "The operation is disallowed")."""
    attribute = next(key for key, value in ATTRIBUTES.items() if value == column)
    return Denied(
        f"the operation is disallowed: {kind} {name!r} is {_STATES[column]} ({attribute} is false)",
        detail={"Type": kind, "Name": name, "Attribute": attribute},
    )


def _deletable(row, kind: str, name: str) -> None:
    if not row.write_enabled:
        raise disallowed(kind, name, "write_enabled")
    if not row.delete_enabled:
        raise disallowed(kind, name, "delete_enabled")


async def repository_for_delete(conn: AsyncConnection, registry_id: int, name: str) -> int:
    """The id of a repository whose content may be deleted; NAME_UNKNOWN or DENIED otherwise."""
    row = (
        await conn.execute(
            sa.select(repositories.c.id, repositories.c.delete_enabled, repositories.c.write_enabled).where(
                repositories.c.registry_id == registry_id, repositories.c.name == name
            )
        )
    ).first()
    if row is None:
        raise NameUnknown(f"repository {name!r} is not known to the registry", detail={"name": name})
    _deletable(row, "repository", name)
    return row.id


_LOCKED_TAG = hot(
    sa.select(tags.c.name).where(
        tags.c.repository_id == sa.bindparam("repository_id"),
        tags.c.name == sa.bindparam("name"),
        sa.not_(tags.c.write_enabled),
    )
)
_WRITABLE = hot(sa.select(repositories.c.write_enabled).where(repositories.c.id == sa.bindparam("repository_id")))


async def check_push(conn: AsyncConnection, repository_id: int, repository: str, new_tags: list[str]) -> None:
    """Refuse a manifest push into a write-locked repository or onto a write-locked tag."""
    writable = (await conn.execute(_WRITABLE, {"repository_id": repository_id})).scalar()
    if writable is not None and not writable:
        raise disallowed("repository", repository, "write_enabled")
    if len(new_tags) == 1:  # a push names one tag: a statement built once
        locked = (await conn.execute(_LOCKED_TAG, {"repository_id": repository_id, "name": new_tags[0]})).scalar()
    elif new_tags:
        locked = (
            await conn.execute(
                sa.select(tags.c.name)
                .where(tags.c.repository_id == repository_id, tags.c.name.in_(new_tags), sa.not_(tags.c.write_enabled))
                .order_by(tags.c.name)
                .limit(1)
            )
        ).scalar()
    else:
        locked = None
    if locked is not None:
        raise disallowed("tag", f"{repository}:{locked}", "write_enabled")


async def check_manifest_delete(conn: AsyncConnection, repository_id: int, repository: str, row) -> None:
    """Refuse deleting a locked manifest, or one that a locked tag points at.

    ``row`` has the manifest's ``digest``, ``delete_enabled`` and ``write_enabled``.
    """
    _deletable(row, "manifest", f"{repository}@{row.digest}")
    locked = (
        await conn.execute(
            sa.select(tags.c.name, tags.c.delete_enabled, tags.c.write_enabled)
            .where(
                tags.c.repository_id == repository_id,
                tags.c.digest == row.digest,
                sa.or_(sa.not_(tags.c.delete_enabled), sa.not_(tags.c.write_enabled)),
            )
            .order_by(tags.c.name)
            .limit(1)
        )
    ).first()
    if locked is not None:
        _deletable(locked, "tag", f"{repository}:{locked.name}")


async def check_tag_delete(conn: AsyncConnection, repository_id: int, repository: str, tag: str) -> None:
    """Refuse deleting a locked tag (an unknown tag is left for the caller to report)."""
    row = (
        await conn.execute(
            sa.select(tags.c.delete_enabled, tags.c.write_enabled).where(
                tags.c.repository_id == repository_id, tags.c.name == tag
            )
        )
    ).first()
    if row is not None:
        _deletable(row, "tag", f"{repository}:{tag}")


async def check_repository_delete(conn: AsyncConnection, repository_id: int, repository: str) -> None:
    """Refuse deleting a repository that holds a locked tag or manifest."""
    for table, kind, key, separator in ((tags, "tag", tags.c.name, ":"), (manifests, "manifest", manifests.c.digest, "@")):
        locked = (
            await conn.execute(
                sa.select(key.label("key"), table.c.delete_enabled, table.c.write_enabled)
                .where(
                    table.c.repository_id == repository_id,
                    sa.or_(sa.not_(table.c.delete_enabled), sa.not_(table.c.write_enabled)),
                )
                .order_by(key)
                .limit(1)
            )
        ).first()
        if locked is not None:
            _deletable(locked, kind, f"{repository}{separator}{locked.key}")


def check_read(row, repository: str, reference: str) -> None:
    """Refuse a pull when the repository, the tag or the manifest is read-locked.

    ``row`` carries ``repository_read``, ``manifest_read`` and ``tag_read`` (None when
    pulled by digest), selected in the pull's own query.
    """
    if not row.repository_read:
        raise disallowed("repository", repository, "read_enabled")
    if row.tag_read is not None and not row.tag_read:
        raise disallowed("tag", f"{repository}:{reference}", "read_enabled")
    if not row.manifest_read:
        raise disallowed("manifest", f"{repository}@{row.digest}", "read_enabled")
