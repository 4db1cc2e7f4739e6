# syntax=docker/dockerfile:1
# Deadline's image. Built in one stage (the locked packages, scripts/build.sh — the build .ci/run also
# runs — then pruned of devDependencies: no TypeScript, no compiler at start), run in another as the
# unprivileged `node` user. Configure it with environment variables (.env.example lists them all).
#   docker build -t deadline .
#   docker run -e JWT_SECRET=… -e DATABASE_URL=… -e REDIS_URL=… -p 4000:4000 deadline
# docker-compose.yml runs it beside its stores, with `npm run migrate` as the release step.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations
COPY bench ./bench
RUN sh scripts/build.sh && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORT=4000 \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# Owned by root, read by `node`: the server writes nothing into its own folder in production.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/scripts ./scripts
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# `start:prod` runs dist/ with package.json's Node flags (config.serverNodeFlags), exec'd: SIGTERM from
# `docker stop` reaches the server through npm, and it stops gracefully (SHUTDOWN_GRACE_SECONDS).
CMD ["npm", "run", "start:prod"]
