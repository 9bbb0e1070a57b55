"""The copies this FaceApp made of gallery data (backups, exported crop folders), so that an erasure reaches them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-02-02

``app_copies`` lists every file ``faceapp db backup`` wrote and every folder ``identities show --crops-dir``
wrote crops into (absolute paths). Deleting a person or a sample replays the deletion in each listed backup
that still exists (secure_delete, then VACUUM) and shreds their crop files, see ``faceapp.storage.backups``;
``pending_erasures`` holds a deletion (its ids) until every copy had it.

``gallery_keys.unlinkable`` says that templates are stored through the gallery's secret orthogonal transform
(``faceapp.storage.unlinkable``). Set here for a new encrypted gallery when FaceApp's ``KeyOptions`` ask for it
(``FACEAPP_GALLERY_UNLINKABLE=on``); a gallery that already holds templates gets it from
``faceapp db rotate-key --full --unlinkable`` (which transforms them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from faceapp.storage.migrate import KEY_OPTIONS

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
    op.create_table(
        "pending_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pending_erasures"),
    )
    op.add_column("gallery_keys", sa.Column("unlinkable", sa.Boolean(), server_default=sa.false(), nullable=False))
    options = context.config.attributes.get(KEY_OPTIONS)
    if options is not None and getattr(options, "unlinkable", False) and not context.is_offline_mode():
        bind = op.get_bind()
        if not bind.execute(sa.text("SELECT COUNT(*) FROM templates")).scalar():
            bind.execute(sa.text("UPDATE gallery_keys SET unlinkable = :on"), {"on": True})


def downgrade() -> None:
    if op.get_bind().execute(sa.text("SELECT COUNT(*) FROM gallery_keys WHERE unlinkable")).scalar():
        raise RuntimeError("this gallery's templates are unlinkable (transformed): export it and import the export "
                           "into the older FaceApp instead of downgrading")
    op.drop_column("gallery_keys", "unlinkable")
    op.drop_table("pending_erasures")
    op.drop_table("app_copies")
