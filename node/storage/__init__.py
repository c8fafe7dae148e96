"""Storage layer: peewee models and the queries over them (see ``db`` for the rules)."""
