"""Indexes for the audit API's filters: by actor key, by session, by event.

Revision ID: 0008_ops
Revises: 0004
"""

from alembic import op

revision = "0008_ops"
down_revision = "0005_browser"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_actor_occurred": ["actor_key_id", "occurred_at"],
    "ix_audit_session_occurred": ["session_id", "occurred_at"],
    "ix_audit_event_occurred": ["event", "occurred_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "audit_events", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "audit_events")
