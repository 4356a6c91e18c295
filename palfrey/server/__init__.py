"""One process's server: listeners, connections, lifespan, graceful shutdown."""
