"""Serving trained models, one job per module: which model a reference names (resolver), its
warm forward pass (loader), and a request's images as one batch within the limits (decoding).
`service.usecases.prediction` puts them together for the predict routes."""
