# The fireflow worker (`fireflow worker`) for Cloud Run or any container host: Node 20 on Debian 12, sox and ffmpeg
# to decode recordings, and Whisper's Python environment with its model, every file pinned by hash. Build from the
# repository root: `gcloud builds submit --tag REGION-docker.pkg.dev/PROJECT/fireflow/worker .` (README, "Deploying").
# No Docker engine runs where this project is tested: the worker process is (test/worker.test.ts), this image is not.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends sox libsox-fmt-all ffmpeg python3 python3-venv tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Whisper first: it changes least and is the largest layer (about 690 MB).
COPY python/requirements.txt python/whisper_worker.py python/models.json python/
RUN python3 -m venv .fireflow/python/whisper \
 && .fireflow/python/whisper/bin/pip install --no-cache-dir --disable-pip-version-check --no-input \
      --require-hashes --only-binary :all: -r python/requirements.txt
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin/ bin/
COPY --from=build /src/dist/src/ dist/src/
ENV NODE_ENV=production \
    HF_HUB_OFFLINE=1 \
    FIREFLOW_WHISPER_PYTHON=/app/.fireflow/python/whisper/bin/python \
    FIREFLOW_TRANSCRIBER=whisper
USER node
EXPOSE 8080
# tini reaps the transcribers' processes and passes SIGTERM on; the worker drains on it.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "bin/fireflow.mjs", "worker"]
