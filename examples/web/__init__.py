"""The embedding example: a small chat backend (Starlette on uvicorn) around the runtime.

Run it with ``python -m examples.web`` from the repository root; see README.md here
and ``docs/embedding.md``.
"""
