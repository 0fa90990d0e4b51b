"""Sessions carry their channel: `web` (a LiveKit client with a token), `phone` (SIP), `chat`.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("channel", sa.String(16), nullable=False, server_default="web"))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("channel")
