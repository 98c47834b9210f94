"""Redis: versioned cache keys, the response cache, the Redis Cluster backend, the circuit breaker."""
