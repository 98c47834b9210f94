"""REST helpers shared by every app: rendering, parsing, errors, pagination, throttles, HTTP caching."""
