"""The queue boundary: Huey only delivers "train experiment X"; the database row owns the state."""
