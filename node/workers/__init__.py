"""Background workers: asyncio tasks started with the server, each exposing ``run_once``."""
