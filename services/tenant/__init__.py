"""The tenant service."""
