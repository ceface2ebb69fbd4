# twofold as one self-contained binary. Build where Deno can fetch its `denort` runtime (or point
# DENORT_BIN at a local copy); the image needs /dev/net/tun and CAP_NET_ADMIN at run time:
#   docker build -t twofold .
#   docker run --rm --cap-add NET_ADMIN --device /dev/net/tun -v /var/run/wireguard:/var/run/wireguard twofold wg -f wg0
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG DENORT_BIN=
ENV DENORT_BIN=${DENORT_BIN}
RUN npx -y deno@2.9.6 task compile

FROM debian:bookworm-slim
# libssl3 provides libcrypto.so.3 (the fast AEAD backend); iproute2 and wireguard-tools for operators.
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 iproute2 wireguard-tools && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/dist/twofold /usr/local/bin/twofold
ENTRYPOINT ["/usr/local/bin/twofold"]
