"""Operator commands beside ``carnet serve``: backup, restore, moving to PostgreSQL, doctor."""
