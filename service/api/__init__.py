"""The HTTP API: the app factory, its dependencies and one router per resource."""
