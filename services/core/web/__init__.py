"""The web framework glue every service shares: the app factory and its lifespan,
middleware, security dependencies, responses, health, the direct ASGI routes."""
