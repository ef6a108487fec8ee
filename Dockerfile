# The service image: API, worker and migrations, chosen by the command (see docker-compose.yml).
#   docker build -t mnist-lab .
#   docker run -p 8000:8000 mnist-lab      # all in one: SQLite, embedded worker
# GPU workers: --build-arg TENSORFLOW="tensorflow[and-cuda]>=2.18,<2.22" (compose profile "gpu").
FROM python:3.11-slim

# Empty: tensorflow-cpu, as pyproject.toml declares. A requirement here replaces it.
ARG TENSORFLOW=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOST=0.0.0.0 \
    PORT=8000 \
    MODELS_DIR=/models

RUN useradd --create-home --uid 10001 app

WORKDIR /app

# Dependencies first, in their own layer: editing the code does not reinstall TensorFlow.
# tensorflow-cpu and tensorflow both ship the `tensorflow` package: a swap removes one first.
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && if [ -n "$TENSORFLOW" ]; then pip uninstall -y tensorflow-cpu && pip install "$TENSORFLOW"; fi \
    && rm /tmp/requirements.txt

COPY README.md alembic.ini ./
COPY alembic ./alembic
COPY service ./service
# A fresh named volume takes the owner of the directory it is mounted on: /models is the app's.
RUN pip install --no-deps . \
    && mkdir -p /models /app/var \
    && chown app:app /models /app/var

USER app

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"

CMD ["python", "-m", "service"]
