# Titan's image: node and the built app under /app. Two ways to build it:
#   docker compose build        online: npm ci and tsc run inside the build (stages build, runtime)
#   docker build --target prebuilt --build-arg NODE_IMAGE=... -f Dockerfile <dir>
#                               offline: <dir> holds an app built on the host (package.json,
#                               dist/, a production node_modules/); test/compose does this
# The base image is a build arg so mirrored registries, or a base imported from
# the host's node binary, can be used.
ARG NODE_IMAGE=node:20-bookworm-slim

# First in the file: the classic builder (docker-compose 1.x, docker without
# buildx) builds every stage up to its target, so this one must come before the
# stage that needs the npm registry. In an online build it is an unused copy of
# the sources; it runs nothing, so it also builds on a base without a shell.
FROM ${NODE_IMAGE} AS prebuilt
ENV NODE_ENV=production
WORKDIR /app
COPY . ./
ENTRYPOINT ["node"]
CMD ["dist/cmd/titan/main.js", "--help"]

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" runs tsc, and the sources are not copied yet.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY cmd ./cmd
COPY internal ./internal
COPY pkg ./pkg
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
ENTRYPOINT ["node"]
CMD ["dist/cmd/titan/main.js", "--help"]
