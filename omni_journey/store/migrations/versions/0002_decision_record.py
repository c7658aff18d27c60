"""decision record: journey_log.detail (the inputs of each decision), by customer

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('journey_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.create_index('ix_journey_log_customer_journey_at', ['customer_id', 'journey_key', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('journey_log', schema=None) as batch_op:
        batch_op.drop_index('ix_journey_log_customer_journey_at')
        batch_op.drop_column('detail')
