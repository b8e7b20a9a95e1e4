"""Helpers the tests share: real inputs and builders (helpers), a PostgreSQL server (pgserver),
fake t.me pages (channel_routes)."""
