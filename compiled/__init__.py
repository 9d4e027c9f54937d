"""Selections compiled to one SQL statement (schema.compiled_reads)."""
