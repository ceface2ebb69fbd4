# twofold from its release tarball (docs/release.md). Two routes to the same image:
#  1. From a tarball built beforehand (the default; `deno task release` works offline):
#       npx -y deno@2.9.6 task release
#       docker build -t twofold .
#  2. Built inside Docker (needs the npm registry to fetch deno@2.9.6 and the npm dependencies):
#       docker build --build-arg RELEASE_FROM=built -t twofold .
# Run (needs /dev/net/tun and CAP_NET_ADMIN):
#   docker run --rm --cap-add NET_ADMIN --device /dev/net/tun -v /etc/twofold:/etc/twofold:ro \
#     -v twofold-state:/var/lib/twofold twofold up --config /etc/twofold/node.json
ARG RELEASE_FROM=prebuilt
ARG VERSION=0.2.0

FROM debian:bookworm-slim AS built
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npx -y deno@2.9.6 task release && mkdir /release \
  && tar -xzf dist/twofold-*-linux-x64.tar.gz -C /release --strip-components=1

FROM debian:bookworm-slim AS prebuilt
ARG VERSION
# ADD unpacks a local tar.gz.
ADD dist/twofold-${VERSION}-linux-x64.tar.gz /
RUN mv /twofold-${VERSION}-linux-x64 /release

FROM ${RELEASE_FROM} AS release

FROM debian:bookworm-slim
# libssl3 provides libcrypto.so.3 (the fast AEAD backend); iproute2 and wireguard-tools for operators.
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 iproute2 wireguard-tools && rm -rf /var/lib/apt/lists/*
COPY --from=release /release /opt/twofold
RUN ln -s /opt/twofold/bin/twofold /usr/local/bin/twofold \
  && ln -s /opt/twofold/bin/twofold-wg /usr/local/bin/twofold-wg
ENV DENO_DIR=/var/cache/twofold
ENTRYPOINT ["/usr/local/bin/twofold"]
