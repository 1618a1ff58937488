# syntax=docker/dockerfile:1.7
# nim-admission: admission webhook for NVIDIA NIM Operator NIMService.
#   docker build -t nim-admission:0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
# The build stage compiles TypeScript with the full toolchain; the runtime stage holds production dependencies,
# dist/src and schemas/ only, and runs as a numeric non-root user (Kubernetes runAsNonRoot can verify it).
# test/unit/dockerfile.test.ts lints this file and replays the runtime stage's steps without a Docker engine.

FROM node:24.22.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY schemas ./schemas
COPY src ./src
RUN npm run build

FROM node:24.22.3-bookworm-slim AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="nim-admission" \
      org.opencontainers.image.description="Validating and mutating admission webhook for NVIDIA NIM Operator NIMService autoscaling" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/node:24.22.3-bookworm-slim"
ENV NODE_ENV=production
WORKDIR /app
# Production dependencies only, from the lock file; then drop the package managers, which the server never uses.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
    && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
              /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
COPY schemas ./schemas
COPY --from=build /app/dist/src ./dist/src
# Files stay owned by root and read-only to the server; it writes nothing but /tmp (an emptyDir in the chart).
USER 10001:10001
# 8443: HTTPS /validate and /mutate; 9090: /healthz, /readyz and /metrics (plain HTTP).
EXPOSE 8443 9090
# No HEALTHCHECK: Kubernetes ignores it; the chart probes /healthz and /readyz on the metrics port.
# Node runs as PID 1 and handles SIGTERM itself (readiness drain, then exit).
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
