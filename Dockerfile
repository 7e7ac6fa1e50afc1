# The tend controller image: a release build on Debian, run as a non-root user on a read-only
# root filesystem (see manifests/controller/deployment.yaml). postgresql-client provides
# pg_dump/pg_restore for database backups; tend matches the client to the server's major
# version at run time.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tend

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata postgresql-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tend /usr/local/bin/tend
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tend"]
CMD ["run"]
