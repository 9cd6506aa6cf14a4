# syntax=docker/dockerfile:1
# The serving image: `mlops serve` on the model models/production.json names.
#
#   docker build -t mlops-serve .
#       the model is fetched by its version's md5 from the DVC remote when the
#       container starts (credentials from the container's environment);
#   docker build -t mlops-serve --build-arg MODEL=baked \
#       --secret id=AWS_ACCESS_KEY_ID --secret id=AWS_SECRET_ACCESS_KEY .
#       the model is fetched once at build time and baked into the image (the
#       credentials are BuildKit secrets: never in a layer or the image's history).
#
# README "Running the server in a container" has the run commands and variables;
# tests/unit/test_dockerfile.py lints this file (hadolint) and checks its shape.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9
# fetched (at start-up) | baked (at build time)
ARG MODEL=fetched

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- build: the locked environment, without the dev group ---------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, in their own layer: rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --no-editable
COPY README.md LICENSE ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- runtime: the environment, the project's config and contract, no build tools ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 mlops \
    && useradd --system --uid 10001 --gid mlops --home-dir /app --no-create-home mlops
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DVC_NO_ANALYTICS=1
# What serving reads: params, the data contract, the manifest, the DVC remote's config.
COPY params.yaml ./
COPY data/schema.yaml data/schema.yaml
COPY models/production.json models/production.json
COPY .dvc/config .dvc/config
# No git in the image: DVC runs without an SCM. The cache and the prediction log are
# the only places written, and they belong to the unprivileged user.
RUN dvc config --local core.no_scm true \
    && mkdir -p .dvc/cache .dvc/tmp logs \
    && chown -R mlops:mlops .dvc logs
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]

# --- the model: fetched when the container starts (the server pulls it) ------------
FROM runtime AS model-fetched
USER 10001:10001

# --- or baked in at build time -------------------------------------------------------
FROM runtime AS model-baked
USER 10001:10001
# A secret not given is simply absent: give those of the remote's store.
RUN --mount=type=secret,id=AWS_ACCESS_KEY_ID,env=AWS_ACCESS_KEY_ID \
    --mount=type=secret,id=AWS_SECRET_ACCESS_KEY,env=AWS_SECRET_ACCESS_KEY \
    --mount=type=secret,id=AZURE_STORAGE_CONNECTION_STRING,env=AZURE_STORAGE_CONNECTION_STRING \
    --mount=type=secret,id=GOOGLE_APPLICATION_CREDENTIALS,target=/run/secrets/gcp.json,uid=10001 \
    GOOGLE_APPLICATION_CREDENTIALS=/run/secrets/gcp.json mlops fetch

# --- the image: `mlops serve` on all interfaces, on the port the health check asks ---
# hadolint ignore=DL3006
FROM model-${MODEL}
CMD ["mlops", "serve", "--host", "0.0.0.0", "--port", "8080"]
