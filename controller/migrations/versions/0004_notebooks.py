"""notebooks: the Jupyter server of each notebook instance (CreateEaiJupyter)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notebooks',
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('client_instance_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token_ciphertext', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('environment_json', sqlmodel.sql.sqltypes.AutoString(length=65536), nullable=False),
    sa.Column('server_url', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('server_attachment_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('instance_id')
    )
    op.create_index(op.f('ix_notebooks_account_id'), 'notebooks', ['account_id'], unique=False)
    op.create_index(op.f('ix_notebooks_client_instance_id'), 'notebooks', ['client_instance_id'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_notebooks_client_instance_id'), table_name='notebooks')
    op.drop_index(op.f('ix_notebooks_account_id'), table_name='notebooks')
    op.drop_table('notebooks')
