"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 07:45:06.131622
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('balance_micro', sa.BigInteger(), nullable=False),
    sa.Column('real_name_verified', sa.Boolean(), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('attachments',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('client_instance_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('node_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token_ciphertext', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.Column('node_ready_us', sa.BigInteger(), nullable=True),
    sa.Column('vm_ready_us', sa.BigInteger(), nullable=True),
    sa.Column('ended_us', sa.BigInteger(), nullable=True),
    sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_client_instance_id'), ['client_instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_instance_id'), ['instance_id'], unique=False)

    op.create_table('bill_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('instance_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hour_start_us', sa.BigInteger(), nullable=False),
    sa.Column('billed_us', sa.BigInteger(), nullable=False),
    sa.Column('amount_micro', sa.BigInteger(), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id', 'hour_start_us', name='uq_bill_items_instance_hour')
    )
    with op.batch_alter_table('bill_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bill_items_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bill_items_hour_start_us'), ['hour_start_us'], unique=False)

    op.create_table('billing_cursor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('billed_through_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('idempotency_records',
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('client_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('result_json', sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'action', 'client_token')
    )
    op.create_table('listed_counts',
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('region_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('listed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'region_id')
    )
    op.create_table('nodes',
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('session_token_hash', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('heartbeat_deadline_us', sa.BigInteger(), nullable=False),
    sa.Column('registered_us', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_us', sa.BigInteger(), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('region_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('zone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hostname', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('gateway_address', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('backend', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('accelerator_model', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('tf_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nodes_region_id'), ['region_id'], unique=False)

    op.create_table('seen_nonces',
    sa.Column('access_key_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('seen_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('access_key_id', 'nonce')
    )
    with op.batch_alter_table('seen_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seen_nonces_seen_us'), ['seen_us'], unique=False)

    op.create_table('transitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('instance_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('at_us', sa.BigInteger(), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transitions_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transitions_at_us'), ['at_us'], unique=False)
        batch_op.create_index('ix_transitions_instance_at', ['instance_id', 'at_us', 'id'], unique=False)

    op.create_table('access_keys',
    sa.Column('access_key_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('secret_ciphertext', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('access_key_id')
    )
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_keys_account_id'), ['account_id'], unique=False)

    op.create_table('client_instances',
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('session_token_hash', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('heartbeat_deadline_us', sa.BigInteger(), nullable=False),
    sa.Column('registered_us', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_us', sa.BigInteger(), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('region_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('zone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('vpc_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('vswitch_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('instance_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('vcpu', sa.Integer(), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=False),
    sa.Column('tf_endpoint', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('client_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_instances_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_client_instances_vswitch_id'), ['vswitch_id'], unique=False)

    op.create_table('instances',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('region_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('zone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('instance_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status_since_us', sa.BigInteger(), nullable=False),
    sa.Column('client_instance_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('slice_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('attachment_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('resource_group_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('security_group_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('vswitch_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('vpc_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('image', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('payment_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.Column('started_us', sa.BigInteger(), nullable=True),
    sa.Column('released_us', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_instance_id'),
    sa.UniqueConstraint('slice_id')
    )
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instances_instance_type'), ['instance_type'], unique=False)
        batch_op.create_index('ix_instances_listing', ['account_id', 'region_id', 'created_us', 'id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_status'), ['status'], unique=False)

    op.create_table('slices',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('node_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('instance_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('gpu_index', sa.Integer(), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=False),
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('draining', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id')
    )
    with op.batch_alter_table('slices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slices_instance_type'), ['instance_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_slices_node_id'), ['node_id'], unique=False)

    op.create_table('instance_tags',
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('instance_id', 'key')
    )
    with op.batch_alter_table('instance_tags', schema=None) as batch_op:
        batch_op.create_index('ix_instance_tags_key_value', ['key', 'value', 'instance_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('instance_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_instance_tags_key_value')

    op.drop_table('instance_tags')
    with op.batch_alter_table('slices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slices_node_id'))
        batch_op.drop_index(batch_op.f('ix_slices_instance_type'))

    op.drop_table('slices')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instances_status'))
        batch_op.drop_index(batch_op.f('ix_instances_name'))
        batch_op.drop_index('ix_instances_listing')
        batch_op.drop_index(batch_op.f('ix_instances_instance_type'))

    op.drop_table('instances')
    with op.batch_alter_table('client_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_instances_vswitch_id'))
        batch_op.drop_index(batch_op.f('ix_client_instances_account_id'))

    op.drop_table('client_instances')
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_keys_account_id'))

    op.drop_table('access_keys')
    with op.batch_alter_table('transitions', schema=None) as batch_op:
        batch_op.drop_index('ix_transitions_instance_at')
        batch_op.drop_index(batch_op.f('ix_transitions_at_us'))
        batch_op.drop_index(batch_op.f('ix_transitions_account_id'))

    op.drop_table('transitions')
    with op.batch_alter_table('seen_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seen_nonces_seen_us'))

    op.drop_table('seen_nonces')
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nodes_region_id'))

    op.drop_table('nodes')
    op.drop_table('listed_counts')
    op.drop_table('idempotency_records')
    op.drop_table('billing_cursor')
    with op.batch_alter_table('bill_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bill_items_hour_start_us'))
        batch_op.drop_index(batch_op.f('ix_bill_items_account_id'))

    op.drop_table('bill_items')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_instance_id'))
        batch_op.drop_index(batch_op.f('ix_attachments_client_instance_id'))

    op.drop_table('attachments')
    op.drop_table('accounts')
