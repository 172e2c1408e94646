"""one stock push per store at a time

Revision ID: 0003_push_lease
Revises: 0002_plugins
Create Date: 2026-12-02 02:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003_push_lease'
down_revision = '0002_plugins'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('store') as batch_op:
        batch_op.add_column(sa.Column('push_started_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('store') as batch_op:
        batch_op.drop_column('push_started_at')
