"""Initial schema: identities, crops, models, templates, thresholds, audit events.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("consent_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identities"),
        sa.UniqueConstraint("name", name="uq_identities_name"),
        sa.UniqueConstraint("external_id", name="uq_identities_external_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "crops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], name="fk_crops_identity_id_identities",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_crops"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_crops_identity_id", "crops", ["identity_id"])
    op.create_table(
        "models",
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("folder", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("embedding_dim > 0", name=op.f("ck_models_positive_dim")),
        sa.PrimaryKeyConstraint("model_id", name="pk_models"),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("crop_id", sa.Integer(), nullable=True),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], name="fk_templates_identity_id_identities",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["models.model_id"], name="fk_templates_model_id_models",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["crop_id"], ["crops.id"], name="fk_templates_crop_id_crops", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_templates"),
        sa.UniqueConstraint("crop_id", "model_id", name="uq_templates_crop_model"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_templates_model_identity", "templates", ["model_id", "identity_id"])
    op.create_index("ix_templates_identity_id", "templates", ["identity_id"])
    op.create_table(
        "thresholds",
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("verify", sa.Float(), nullable=False),
        sa.Column("identify", sa.Float(), nullable=False),
        sa.Column("target_far", sa.Float(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("calibrated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.model_id"], name="fk_thresholds_model_id_models",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", name="pk_thresholds"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("identity_name", sa.String(200), nullable=True),
        sa.Column("model_id", sa.String(200), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("decision", sa.String(32), nullable=True),
        sa.Column("operator", sa.String(200), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], name="fk_audit_events_identity_id_identities",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("thresholds")
    op.drop_index("ix_templates_identity_id", table_name="templates")
    op.drop_index("ix_templates_model_identity", table_name="templates")
    op.drop_table("templates")
    op.drop_table("models")
    op.drop_index("ix_crops_identity_id", table_name="crops")
    op.drop_table("crops")
    op.drop_table("identities")
