"""Unlinkable templates: a per-gallery secret orthogonal transform of every embedding (ISO/IEC 24745
unlinkability and renewability), on request (``FACEAPP_GALLERY_UNLINKABLE=on`` for a new gallery,
``faceapp db rotate-key --full --unlinkable`` for an existing one).

A gallery that has it stores ``Q v`` instead of ``v`` for every template (sealed as usual), where ``Q`` is a
random ``dim x dim`` orthogonal matrix seeded from the gallery's data key (HKDF-SHA256 with the gallery id,
model id and dimension), and every probe is multiplied by the same ``Q`` before it is compared
(``faceapp.services.gallery.Gallery``). Orthogonal maps keep dot products, so every score inside the gallery
is unchanged; two galleries have independent ``Q`` s, so the same person's templates taken out of two
galleries (decrypted) score like strangers. A full key rotation draws a new data key and so a new ``Q``:
the templates are renewed without re-enrolling anyone. Exports and template records undo ``Q`` (the importing
gallery applies its own); only the in-memory index (``gallery_rows``) holds transformed vectors.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_INFO = b"faceapp/unlinkable/v1"


def transform_seed(data_key: bytes, gallery_id: str, model_id: str, dim: int) -> bytes:
    """32 secret bytes for one gallery, model and dimension (HKDF-SHA256 of the gallery's data key)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    info = b"|".join((_INFO, gallery_id.encode(), model_id.encode(), str(int(dim)).encode()))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)


@lru_cache(maxsize=16)
def orthogonal_matrix(seed: bytes, dim: int) -> np.ndarray:
    """A random orthogonal ``dim x dim`` float64 matrix (Haar-distributed: QR of a Gaussian matrix with the
    signs of R's diagonal folded in), reproducible from ``seed``."""
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q *= np.sign(np.diag(r))
    q.setflags(write=False)
    return q


def apply(matrix: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (one per row, or one vector) mapped by ``matrix``, as float32."""
    return (np.asarray(vectors, dtype=np.float64) @ matrix.T).astype(np.float32)


def undo(matrix: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The inverse of ``apply`` (the transpose of an orthogonal matrix)."""
    return (np.asarray(vectors, dtype=np.float64) @ matrix).astype(np.float32)
