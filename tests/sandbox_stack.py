"""Kept for tests written before tests/stack.py: the same helpers under their old home.

New tests import from `stack` (see its docstring for the shared fixtures)."""

from stack import admin_client, demo_connection, wait_for

__all__ = ["admin_client", "demo_connection", "wait_for"]
