"""One module per schema revision, applied in order; each is a frozen snapshot.

A migration never imports the live tables of ``parlant_runtime.storage.sql.schema``:
the schema moves on, and an old migration must keep creating exactly what it
created when it was written.
"""
