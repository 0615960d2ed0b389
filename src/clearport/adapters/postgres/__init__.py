"""PostgreSQL adapters: pool, embedded server, migrations, repositories."""
