"""Pydantic request and response models: the service's public vocabulary."""
