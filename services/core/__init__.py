"""Shared toolkit for every logserver service. Imports no service package."""
