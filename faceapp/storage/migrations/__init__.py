"""Alembic migrations of the identity store, run programmatically by ``faceapp.storage.migrate``."""
