"""Reporting: reconciling calls served without cc_ari (CEL) into PostgreSQL."""
