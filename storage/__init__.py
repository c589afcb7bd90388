"""The schema migrations of parlant-runtime (Alembic), installed as ``parlant_runtime._migrations``.

The folder lives at the top of the repository so that migrations are reviewed as
the database's history rather than as library code; ``pyproject.toml`` maps it into
the package so that an installed wheel can upgrade a database without a checkout.
Run them with ``parlant-runtime db upgrade`` or :mod:`parlant_runtime.storage.migrate`.
"""
