"""Gallery revision counter (so in-memory indexes notice other processes' changes) and audit indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-28

``gallery_state`` holds one row whose ``revision`` every identity/template change increments; an open
gallery index compares it before answering and re-syncs when it moved. ``faceapp audit --since`` and
per-operation queries scan ``audit_events`` by time, which grows with every decision: index it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        "gallery_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_gallery_state_single_row")),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_state"),
    )
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    op.bulk_insert(state, [{"id": 1, "revision": 0, "updated_at": now}])
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_operation_time", "audit_events", ["operation", "time"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_operation_time", table_name="audit_events")
    op.drop_index("ix_audit_events_time", table_name="audit_events")
    op.drop_table("gallery_state")
