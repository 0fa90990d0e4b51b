"""Phone calls: phone side of sessions, phone numbers, outbound trunks; owners get phone:write.

Revision ID: 0007_phone
Revises: 0006_start_guarantees
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007_phone"
down_revision = "0006_start_guarantees"
branch_labels = None
depends_on = None

# Keys holding every scope there was before this one (owner keys) get the new one too.
_OWNER_SCOPES = {"sessions:write", "sessions:read", "keys:write", "ops:write"}


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("call_direction", sa.String(8)))
        batch.add_column(sa.Column("caller_number", sa.String(64)))
        batch.add_column(sa.Column("called_number", sa.String(64)))
        batch.add_column(sa.Column("sip_call_id", sa.String(256)))
    op.create_table(
        "phone_numbers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("number", sa.String(64), nullable=False, unique=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("allowed_addresses", sa.JSON, nullable=False),
        sa.Column("auth_username", sa.String(128)),
        sa.Column("auth_password_encrypted", sa.Text),
        sa.Column("trunk_id", sa.String(64)),
        sa.Column("dispatch_rule_id", sa.String(64)),
        sa.Column("ready_room", sa.String(128), unique=True),
        sa.Column("api_key_id", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbound_trunks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("numbers", sa.JSON, nullable=False),
        sa.Column("auth_username", sa.String(128)),
        sa.Column("auth_password_encrypted", sa.Text),
        sa.Column("trunk_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    keys = sa.table("api_keys", sa.column("id", sa.String), sa.column("scopes", sa.JSON))
    conn = op.get_bind()
    for key_id, scopes in conn.execute(sa.select(keys.c.id, keys.c.scopes)).all():
        values = json.loads(scopes) if isinstance(scopes, str) else list(scopes or [])
        if _OWNER_SCOPES <= set(values) and "phone:write" not in values:
            conn.execute(
                keys.update().where(keys.c.id == key_id).values(scopes=[*values, "phone:write"])
            )


def downgrade() -> None:
    op.drop_table("outbound_trunks")
    op.drop_table("phone_numbers")
    with op.batch_alter_table("sessions") as batch:
        for column in ("sip_call_id", "called_number", "caller_number", "call_direction"):
            batch.drop_column(column)
