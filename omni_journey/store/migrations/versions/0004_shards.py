"""journeys in shards (journey_cursors.shards, journey_shard_cursors) and provider
rate limits shared by every dispatcher (provider_rate_limits)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import omni_journey.store.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('journey_cursors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shards', sa.Integer(), server_default='1', nullable=False))
    op.create_table('journey_shard_cursors',
    sa.Column('journey_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('shards', sa.Integer(), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False),
    sa.Column('last_event_seq', sa.Integer(), nullable=False),
    sa.Column('last_scheduled_at', omni_journey.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', omni_journey.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('journey_key', 'shards', 'shard')
    )
    op.create_table('provider_rate_limits',
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('stamp', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('provider')
    )


def downgrade() -> None:
    op.drop_table('provider_rate_limits')
    op.drop_table('journey_shard_cursors')
    with op.batch_alter_table('journey_cursors', schema=None) as batch_op:
        batch_op.drop_column('shards')
