"""Use cases: what a route or a worker asks of the service, coordinating db, queue and store."""
