"""Who is ending a session, noted with the reason before its room is deleted: LiveKit's
room_finished webhook can close the session before the /end request's own write, and the
audit trail's session.ended entry must still name the key that ended it.

Revision ID: 0013_end_actor
Revises: 0010_chat
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_end_actor"
down_revision = "0010_chat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("ending_key_id", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("ending_key_id")
