"""The client side: live runs (hot path, spool, writer) and the read-side Client."""
