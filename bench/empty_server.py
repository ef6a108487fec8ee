"""The ceiling for bench/predict.py: a FastAPI endpoint that parses the same JSON body as
POST /predict and answers a constant, with no model at all, on the same uvicorn settings.

    python bench/empty_server.py --port 8001
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from pydantic import BaseModel

ANSWER = b'{"digit":0,"probabilities":[1,0,0,0,0,0,0,0,0,0]}'


class Body(BaseModel):
    image: list[Any]
    model: str = "best"


app = FastAPI()


@app.post("/predict")
async def predict(body: Body) -> Response:
    return Response(ANSWER, media_type="application/json")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
