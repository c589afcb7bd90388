"""Tests of the storage port that every adapter (memory, SQLite, PostgreSQL) must pass."""
