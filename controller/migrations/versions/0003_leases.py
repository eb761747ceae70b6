"""leases: the reconciler's lease, so that one replica of several reconciles at a time

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 04:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('acquired_us', sa.BigInteger(), nullable=False),
    sa.Column('expires_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('leases')
