"""the repository events log written by the audit consumer

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 20:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def bytewise(length):
    """Compared byte by byte (ASCII order), as on SQLite: ``COLLATE "C"`` on PostgreSQL."""
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('registry_id', sa.Integer(), nullable=False),
        sa.Column('time', sa.DateTime(timezone=True), nullable=False),
        sa.Column('operation', sa.String(length=32), nullable=False),
        sa.Column('repository', bytewise(255), nullable=False),
        sa.Column('tag', bytewise(128), nullable=True),
        sa.Column('digest', bytewise(140), nullable=True),
        sa.Column('media_type', sa.String(length=255), nullable=True),
        sa.Column('size', sa.BigInteger(), nullable=True),
        sa.Column('identity', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
        sa.UniqueConstraint('event_id', name=op.f('uq_audit_log_event_id')),
    )
    op.create_index(op.f('ix_audit_log_registry_id_time'), 'audit_log', ['registry_id', 'time'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_log_registry_id_time'), table_name='audit_log')
    op.drop_table('audit_log')
