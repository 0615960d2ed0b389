"""PostgreSQL: the pool and unit of work, the embedded server, migrations and SQL helpers."""
