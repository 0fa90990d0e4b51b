"""Secret keys may be allowed in a browser (`allowBrowser`); otherwise one sent with an Origin is
refused (403 secret_key_in_browser).

Revision ID: 0005_browser
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_browser"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("allow_browser", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("allow_browser")
