"""The platform every app uses and that uses no app: ids, geo, REST helpers and throttles,
cache keys and the response cache, the database router and replica health, observability."""
