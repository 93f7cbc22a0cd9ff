"""The `logserver` command: dev stack, tokens, tail, push, generate."""
