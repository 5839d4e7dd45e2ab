"""a repository's tag version, bumped by the database on every change its tag list may show

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 23:00:00

``repositories.tag_version`` goes up in the transaction of every insert, update or
delete of one of the repository's tags and of every change of a manifest's
``list_enabled``: triggers do it, so no writer (a service, a bulk load, a cascade)
can forget it. Listings cache what they render under it (services/listings.py).
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


_BUMP = "UPDATE repositories SET tag_version = tag_version + 1 WHERE id = {row}.repository_id"

# (trigger, table, event, the row whose repository changed)
_TRIGGERS = (
    ("tr_tags_inserted", "tags", "INSERT", "NEW"),
    ("tr_tags_updated", "tags", "UPDATE", "NEW"),
    ("tr_tags_deleted", "tags", "DELETE", "OLD"),
    ("tr_manifests_listed", "manifests", "UPDATE OF list_enabled", "NEW"),
)


def upgrade() -> None:
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tag_version', sa.BigInteger(), nullable=False, server_default='0'))
    if op.get_bind().dialect.name == "sqlite":
        for name, table, event, row in _TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {_BUMP.format(row=row)}; END")
        return
    op.execute(
        "CREATE FUNCTION dockyard_tag_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'DELETE' THEN {_BUMP.format(row='OLD')}; ELSE {_BUMP.format(row='NEW')}; END IF; "
        "RETURN NULL; END $$"
    )
    for name, table, event, _row in _TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW EXECUTE FUNCTION dockyard_tag_changed()")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, table, _event, _row in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + ("" if sqlite else f" ON {table}"))
    if not sqlite:
        op.execute("DROP FUNCTION dockyard_tag_changed()")
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.drop_column('tag_version')
