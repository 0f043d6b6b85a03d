# The two commands of the README, and the benchmarks.
.PHONY: serve test bench

serve:
	go run ./cmd/palisade serve

test:
	go vet ./...
	go test -race -count=1 ./...

bench:
	go test -run '^$$' -bench . -benchmem ./domain/access/ ./eventstore/embedded/ ./app/
	go run ./cmd/palisade bench
