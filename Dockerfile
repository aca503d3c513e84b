# Modelwatch: one self-contained binary (UI assets embedded) on a small Debian base.
# Build: docker build -t modelwatch .   Run: docker run -p 8080:8080 -v modelwatch-data:/data modelwatch

FROM rust:1.95-bookworm AS build
# wasm-bindgen-cli is pinned by Cargo.lock; ./dev.sh installs the matching version.
WORKDIR /src
COPY . .
RUN ./dev.sh build && cp target/release/modelwatch /modelwatch

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data modelwatch \
 && mkdir -p /data && chown modelwatch:modelwatch /data
COPY --from=build /modelwatch /usr/local/bin/modelwatch
USER modelwatch
ENV MODELWATCH_LISTEN=0.0.0.0:8080 \
    MODELWATCH_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/modelwatch"]
CMD ["serve"]
