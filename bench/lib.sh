# What the bench scripts that run one server binary against containers share. Sourced, not
# run: the script sets NAME (the prefix of its containers' names) and DATA (its data
# directory) first, and adds each container it starts to CONTAINERS. At exit the server is
# stopped, the containers removed and DATA deleted.

CONTAINERS=()
SERVER_PID=""

log() { printf '%s\n' "$*" >&2; }

cleanup() {
    local status=$?
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    ((${#CONTAINERS[@]} == 0)) || docker rm -f "${CONTAINERS[@]}" >/dev/null 2>&1 || true
    # Sealed objects are read-only; their directories are not, so rm removes them.
    rm -rf "$DATA"
    exit "$status"
}
trap cleanup EXIT INT TERM

# Stops unless every named tool is installed.
need() {
    local tool
    for tool; do
        command -v "$tool" >/dev/null ||
            { log "$tool is needed (Debian: apt-get install ${tool##*/})"; exit 1; }
    done
}

# Starts Postgres (image $1) as container $NAME-pg, its port published on 127.0.0.1 only,
# and waits until it accepts connections; sets PG_PORT and DATABASE_URL.
start_postgres() {
    docker run -d --name "$NAME-pg" -p 127.0.0.1::5432 \
        -e POSTGRES_USER=uploader -e POSTGRES_PASSWORD=uploader -e POSTGRES_DB=uploader \
        "$1" -c fsync=off >/dev/null
    CONTAINERS+=("$NAME-pg")
    PG_PORT=$(docker port "$NAME-pg" 5432 | head -n1 | sed 's/.*://')
    DATABASE_URL="postgres://uploader:uploader@127.0.0.1:$PG_PORT/uploader"
    local _
    for _ in $(seq 1 120); do
        # While initialising, the image's temporary server listens on its Unix socket only.
        docker exec "$NAME-pg" pg_isready -q -h 127.0.0.1 -U uploader 2>/dev/null && return 0
        sleep 0.5
    done
    log "Postgres did not start"; docker logs "$NAME-pg" 2>&1 | tail -20 >&2; return 1
}

# Waits until the server started as SERVER_PID answers $1/readyz; on failure shows the end
# of its log ($2).
wait_until_ready() {
    local _
    for _ in $(seq 1 600); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        curl -sf -o /dev/null "$1/readyz" && return 0
        sleep 0.1
    done
    log "the server did not become ready:"; tail -20 "$2" >&2; return 1
}
