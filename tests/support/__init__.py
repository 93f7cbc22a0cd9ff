"""Test doubles shared by the unit tests of several packages (one copy, not one per package)."""
