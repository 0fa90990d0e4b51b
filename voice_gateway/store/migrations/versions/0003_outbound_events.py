"""Outbox of outgoing webhook events.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbound_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("deliver_after", TS, nullable=False),
        sa.Column("claimed_until", TS),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("delivered_at", TS),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_outbound_due", "outbound_events", ["delivered_at", "deliver_after"])


def downgrade() -> None:
    op.drop_index("ix_outbound_due", "outbound_events")
    op.drop_table("outbound_events")
