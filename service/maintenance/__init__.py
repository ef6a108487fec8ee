"""Running the service for a term: disk use and its guard, retention, backup and restore.

Nothing here runs on a request's hot path except the cached disk report and the guard.
"""
