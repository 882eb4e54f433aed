"""PostgreSQL: migrations and the one module that writes calls and legs."""
