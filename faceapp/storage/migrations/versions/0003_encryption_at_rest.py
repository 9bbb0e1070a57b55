"""Encryption at rest: the gallery's wrapped data key, and which key version sealed each crop and template.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-20

Adds ``gallery_keys`` (one row: the data key wrapped by a key-encryption key kept outside the database) and
``key_version`` on ``crops`` and ``templates``. When FaceApp runs the upgrade (``faceapp.storage.migrate``
hands over its ``KeyOptions``) and encryption is on (the default), the gallery gets its key and every
existing crop and template is sealed in place, in the same transaction as the schema change; the Store
makes a backup of a SQLite file first and removes it (overwritten) once the sealed gallery opens. Run from
the ``alembic`` command instead, only the schema changes: ``faceapp db encrypt`` seals the rows later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from faceapp.storage.migrate import KEY_OPTIONS, WHERE

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gallery_id", sa.String(36), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kek_id", sa.String(64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("kdf_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_gallery_keys_single_row")),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_keys"),
    )
    op.add_column("crops", sa.Column("key_version", sa.Integer(), nullable=True))
    op.add_column("templates", sa.Column("key_version", sa.Integer(), nullable=True))
    options = context.config.attributes.get(KEY_OPTIONS)
    if options is not None and options.encrypt and not context.is_offline_mode():
        from faceapp.storage.crypto import encrypt_gallery

        encrypt_gallery(op.get_bind(), options, context.config.attributes.get(WHERE, "(database)"))


def downgrade() -> None:
    sealed = sum(op.get_bind().execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE key_version IS NOT NULL")).scalar()
                 for table in ("crops", "templates"))
    if sealed:
        raise RuntimeError("this gallery is encrypted: export it (`faceapp gallery export`) and import the export "
                           "into the older FaceApp instead of downgrading; sealed rows would be unreadable")
    op.drop_column("templates", "key_version")
    op.drop_column("crops", "key_version")
    op.drop_table("gallery_keys")
