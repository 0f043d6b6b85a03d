# The two commands of the README, and the benchmarks.
.PHONY: serve test bench provision

serve:
	go run ./cmd/palisade serve

# Makes the local PostgreSQL ready for the tests (running, pgvector, roles, palisade_test) and
# prints PALISADE_TEST_POSTGRES_URL=... as its only line on stdout.
provision:
	scripts/provision-postgres

# Tests that run on PostgreSQL whatever PALISADE_TEST_READ_MODELS says, and are
# long: the first pass of `go test ./...` runs them, the PostgreSQL pass skips
# them (go test -skip), so they run once per make test.
POSTGRES_PASS_SKIP = ^TestThreeReplicasSurviveSIGKILLOfTheLeader$$

# -timeout 30m: the app package's end-to-end suites take about 3 minutes on a quiet two-core
# machine, but went past go test's default 10 minutes on a loaded one.
# Provisions first and fails if that fails: tests needing PostgreSQL (or the sample data
# sources on PostgreSQL and MariaDB, scripts/provision-datasources) must not be skipped.
test:
	@out="$$(scripts/provision-postgres)" || exit $$?; \
	url="$$(printf '%s\n' "$$out" | tail -n 1)"; \
	case "$$url" in PALISADE_TEST_POSTGRES_URL=postgres://*) ;; \
	*) echo "make test: scripts/provision-postgres printed no PALISADE_TEST_POSTGRES_URL" >&2; exit 1 ;; esac; \
	export "$$url"; echo "export $$url"; \
	dsout="$$(scripts/provision-datasources)" || exit $$?; \
	for v in PALISADE_TEST_DATASOURCE_PG_URL=postgres:// PALISADE_TEST_DATASOURCE_MYSQL_DSN=mysql://; do \
	line="$$(printf '%s\n' "$$dsout" | grep "^$$v" | tail -n 1)"; \
	[ -n "$$line" ] || { echo "make test: scripts/provision-datasources printed no $${v%%=*}" >&2; exit 1; }; \
	export "$$line"; echo "export $$line"; \
	done; \
	echo "go vet ./..." && go vet ./... && \
	echo "go test -race -count=1 -timeout 30m ./..." && go test -race -count=1 -timeout 30m ./... && \
	echo "end-to-end suites again on PostgreSQL read models:" && \
	echo "PALISADE_TEST_READ_MODELS=postgres go test -race -count=1 -timeout 30m -skip '$(POSTGRES_PASS_SKIP)' ./app/ ./cmd/palisade/" && \
	PALISADE_TEST_READ_MODELS=postgres go test -race -count=1 -timeout 30m -skip '$(POSTGRES_PASS_SKIP)' ./app/ ./cmd/palisade/ && \
	echo "end-to-end suites again over the Kafka bus (kfake, through watermill-kafka):" && \
	echo "PALISADE_TEST_BUS=kafka go test -race -count=1 -timeout 30m ./app/" && \
	PALISADE_TEST_BUS=kafka go test -race -count=1 -timeout 30m ./app/ && \
	echo "end-to-end suites again on the EventStoreDB adapter (in-test server on the client's protocol):" && \
	echo "PALISADE_TEST_EVENTSTORE=esdb go test -race -count=1 -timeout 30m ./app/" && \
	PALISADE_TEST_EVENTSTORE=esdb go test -race -count=1 -timeout 30m ./app/

bench:
	go test -run '^$$' -bench . -benchmem ./domain/access/ ./eventstore/embedded/ ./app/
	go run ./cmd/palisade bench
