# syntax=docker/dockerfile:1
# One image for all five services; the chart picks the service with its command:
#   node dist/services/<metadata|cdnurl|reporting|play|queue-listener>/main.js
#
# Base images are pinned to an exact Node LTS release and overridable, so CI can
# build on local stand-ins and a mirror can be used without editing this file.
# Pin by digest too where your registry allows it (for example with Renovate):
#   --build-arg BUILD_IMAGE=node:24.11.1-bookworm-slim@sha256:<digest>
ARG BUILD_IMAGE=node:24.11.1-bookworm-slim
ARG RUNTIME_IMAGE=node:24.11.1-bookworm-slim

# ---- build: dev dependencies + tsc -> dist/ ---------------------------------
FROM ${BUILD_IMAGE} AS build
WORKDIR /app
ENV NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false NPM_CONFIG_UPDATE_NOTIFIER=false
# The lockfile carries no registry hosts: npm uses whatever registry the base
# image's npm config names. Copying the manifests first keeps this layer cached
# while only source changes.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json ./
COPY scripts/copy-migrations.mjs ./scripts/
# The build puts each service's SQL migrations next to its compiled code.
COPY services ./services
RUN npm run build

# ---- prod-deps: production dependencies only --------------------------------
FROM ${BUILD_IMAGE} AS prod-deps
WORKDIR /app
ENV NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false NPM_CONFIG_UPDATE_NOTIFIER=false
COPY package.json package-lock.json ./
# Its own stage so it runs beside the build stage (BuildKit, buildah --jobs).
# npm's cache is a cache mount in both stages: shared, and never in a layer.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev

# ---- runtime: compiled JavaScript + production dependencies -----------------
FROM ${RUNTIME_IMAGE} AS runtime
# Services listen on loopback unless told otherwise; in a container they must be reachable.
ENV NODE_ENV=production HOST=0.0.0.0
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
# Compiled services with their migrations (dist/services/<service>/migrations).
COPY --from=build /app/dist/services ./dist/services
# Numeric user (the official image's "node", 1000) so Kubernetes can verify
# runAsNonRoot without a runAsUser; files above stay root-owned, read-only to it.
USER 1000:1000
EXPOSE 8080 8081 8082 8083 8084
# Exec form: node is PID 1 and receives SIGTERM itself (the services handle it
# and drain); a shell wrapper would swallow the signal.
CMD ["node", "dist/services/play/main.js"]
