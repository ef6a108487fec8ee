"""The baseline for bench/predict.py: a FastAPI app calling `model.predict` for every request.

Nothing is loaded per request (the model is loaded once at start) and it takes the service's
JSON body for one image, `{"image": [[...28 numbers...] x 28]}` in 0-255 or 0-1. It is what one
would write first, and what the service's compiled, cached forward pass is measured against.

    python bench/naive_server.py --model models_store/experiments/<id>/model.keras --port 8001
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class PredictRequest(BaseModel):
    image: list[Any]
    model: str = "best"


def create_app(model_path: str) -> FastAPI:
    model = keras.models.load_model(model_path, compile=False)
    app = FastAPI(title="naive predict")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        x = np.asarray(request.image, dtype=np.float32).reshape(1, 28, 28)
        if x.max() > 1.0:
            x = x / 255.0
        probabilities = model.predict(x, verbose=0)[0]
        return {"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a saved .keras model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The same uvicorn settings as `python -m service api`.
    uvicorn.run(
        create_app(args.model),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
