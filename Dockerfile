# Builds the release binary, then runs it on a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin akti-link

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/akti-link akti
COPY --from=build /src/target/release/akti-link /usr/local/bin/akti-link
USER akti
WORKDIR /var/lib/akti-link
ENV AKTI_PUBLIC_ADDR=0.0.0.0:8080 AKTI_ADMIN_ADDR=0.0.0.0:8081
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/akti-link"]
