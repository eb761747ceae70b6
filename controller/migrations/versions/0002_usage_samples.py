"""usage samples: utilisation readings node agents report, for GetInstanceMetrics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 09:12:30.032323
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('usage_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('attachment_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('slice_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('at_us', sa.BigInteger(), nullable=False),
    sa.Column('gpu_core_percent', sa.Float(), nullable=False),
    sa.Column('gpu_memory_percent', sa.Float(), nullable=False),
    sa.Column('memory_used_mib', sa.BigInteger(), nullable=False),
    sa.Column('cpu_percent', sa.Float(), nullable=False),
    sa.Column('memory_percent', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('usage_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_samples_at_us'), ['at_us'], unique=False)
        batch_op.create_index('ix_usage_samples_instance_at', ['instance_id', 'at_us'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('usage_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_samples_instance_at')
        batch_op.drop_index(batch_op.f('ix_usage_samples_at_us'))

    op.drop_table('usage_samples')
