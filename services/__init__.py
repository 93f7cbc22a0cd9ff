"""logserver: a multi-tenant centralized log server."""
