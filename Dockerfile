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
# The build and prod-deps stages run on the machine's own platform
# (BUILDPLATFORM) whatever the target: tsc's output is JavaScript, and no
# production dependency has a native part (no install script, binding.gyp,
# prebuilt .node or other binary; test/image/image-arm64.test.ts checks the
# image for foreign binaries). An arm64 image built on x86-64 then runs only
# the node-root stage under emulation, not npm ci and tsc.
FROM --platform=$BUILDPLATFORM ${BUILD_IMAGE} AS build
# The architectures the image is built for (skaffold.yaml's release profile
# and scripts/node-lts.sh name the same two): another fails here, plainly,
# not halfway through npm ci. TARGETARCH is set by BuildKit and buildah.
ARG TARGETARCH
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in amd64 | arm64) ;; \
      *) echo "video-mesh builds for linux/amd64 and linux/arm64 only, not $arch" >&2; exit 1 ;; \
    esac
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
FROM --platform=$BUILDPLATFORM ${BUILD_IMAGE} AS prod-deps
WORKDIR /app
ENV NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false NPM_CONFIG_UPDATE_NOTIFIER=false
COPY package.json package-lock.json ./
# Its own stage so it runs beside the build stage (BuildKit, buildah --jobs).
# npm's cache is a cache mount in both stages: shared, and never in a layer.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev

# ---- node-root: the runtime image's node and the libraries it links, alone ---
# The Node image also carries npm, corepack, yarn, a shell and Debian's
# package tools, none of which a service runs: about a third of the image.
# Copy out node, the shared libraries `ldd` names and the few files of /etc
# that glibc and Node read; the runtime stage starts from scratch with them,
# as Google's distroless images are built. The target's platform, named: the
# default, but buildah 1.28 would keep the build stages' BUILDPLATFORM.
FROM --platform=$TARGETPLATFORM ${RUNTIME_IMAGE} AS node-root
RUN set -eu; \
    root=/node-root; node=$(command -v node); \
    mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"; \
    chmod 1777 "$root/tmp"; \
    cp "$node" "$root/usr/local/bin/node"; \
    for lib in $(ldd "$node" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do \
      mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; \
    done; \
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000::/home/node:/sbin/nologin\n' >"$root/etc/passwd"; \
    printf 'root:x:0:\nnode:x:1000:\n' >"$root/etc/group"

# ---- runtime: node, compiled JavaScript + production dependencies ------------
FROM scratch AS runtime
COPY --from=node-root /node-root /
ENV PATH=/usr/local/bin NODE_ENV=production HOST=0.0.0.0
# Services listen on loopback unless told otherwise (HOST above); in a container they must be reachable.
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
# Compiled services with their migrations (dist/services/<service>/migrations).
COPY --from=build /app/dist/services ./dist/services
# Numeric user ("node", 1000, as in the official image) so Kubernetes can
# verify runAsNonRoot without a runAsUser; files above stay root-owned,
# read-only to it. There is no shell: debug with `kubectl debug` (an ephemeral
# container) or run `node -e` in the container.
USER 1000:1000
EXPOSE 8080 8081 8082 8083 8084
# Exec form: node is PID 1 and receives SIGTERM itself (the services handle it
# and drain); a shell wrapper would swallow the signal.
CMD ["node", "dist/services/play/main.js"]
