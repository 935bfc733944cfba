# One image for every component; the entry point picks one:
#   node dist/bin/signaling.js | dist/bin/media-controller.js | dist/bin/tlib-gateway.js | dist/operator/main.js
# rtpengine runs beside media-controller from its own image (SipCluster spec.media.rtpengineImage).
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
ENV NODE_ENV=production HUDDLE_MUSIC_ROOT=/etc/huddle
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/tlib-api/page ./tlib-api/page
COPY config/music /etc/huddle/music
# The node user (uid 1000) owns nothing it could rewrite; the root filesystem can be read-only.
USER 1000:1000
EXPOSE 5060/udp 5060/tcp 7000 9464
ENTRYPOINT ["node", "--enable-source-maps"]
CMD ["dist/bin/signaling.js"]
