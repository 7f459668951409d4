# raftmq image: FROM scratch around the static binary that `make build` writes to bin/raftmq
# (CGO_ENABLED=0). No base image is pulled: `make docker` builds the binary on the host first.
#
#   docker run --rm raftmq:dev version
#   docker run -d -v raftmq-data:/data -v $PWD/broker.conf:/etc/raftmq/broker.conf raftmq:dev broker -c /etc/raftmq/broker.conf
#
# Time zone data is compiled into the binary (time/tzdata), so TZ works: deleteWhen is an hour
# of the local day.
FROM scratch

# A non-root user with a numeric id; /etc/passwd and /etc/group only name it.
COPY docker/passwd /etc/passwd
COPY docker/group /etc/group
# The data directory, owned by that user (a fresh named volume copies this ownership).
COPY --chown=10001:10001 docker/data/ /data/
COPY docker/*.conf /etc/raftmq/
COPY bin/raftmq /usr/local/bin/raftmq

USER 10001:10001
ENV TZ=UTC
WORKDIR /data
VOLUME ["/data"]
# 9876 name server; 10911 remoting; 10912 Raft; 10915 admin HTTP (/livez, /readyz, /metrics).
EXPOSE 9876 10911 10912 10915

# Ready = a Raft leader is known and the node has applied what is committed. The name server
# has no admin HTTP port: docker-compose.yml turns the check off for it.
HEALTHCHECK --interval=5s --timeout=4s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/raftmq", "health", "127.0.0.1:10915"]

ENTRYPOINT ["/usr/local/bin/raftmq"]
CMD ["version"]
