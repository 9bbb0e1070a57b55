"""The copies this FaceApp made of gallery data (backups, exported crop folders), so that an erasure reaches them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-02-02

``app_copies`` lists every file ``faceapp db backup`` wrote and every folder ``identities show --crops-dir``
wrote crops into (absolute paths). Deleting a person or a sample replays the deletion in each listed backup
that still exists (secure_delete, then VACUUM) and shreds their crop files, see ``faceapp.storage.backups``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_app_copies"),
        sa.UniqueConstraint("path", name="uq_app_copies_path"),
    )


def downgrade() -> None:
    op.drop_table("app_copies")
