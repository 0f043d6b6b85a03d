package app

import (
	"slices"
	"testing"
)

// TestOwnServiceHosts: every host of the read-model database, the event
// store (each node, credentials and options aside) and the Kafka brokers
// is one of the deployment's own services.
func TestOwnServiceHosts(t *testing.T) {
	t.Parallel()
	cfg := Config{
		PostgresURL:      "postgres://palisade_app:pw@readmodels.internal:5432/palisade?sslmode=require",
		PostgresOwnerURL: "postgres://owner:pw@10.0.0.7/palisade",
		EventStoreURL:    "esdb://admin:changeit@esdb-0.internal:2113,esdb-1.internal:2113,[fd00::5]:2113?tls=true",
		KafkaBrokers:     []string{"kafka-0.internal:9092", " 10.0.0.9:9092", "kafka-bare"},
	}
	want := []string{"readmodels.internal", "10.0.0.7", "esdb-0.internal", "esdb-1.internal", "fd00::5",
		"kafka-0.internal", "10.0.0.9", "kafka-bare"}
	if got := ownServiceHosts(cfg); !slices.Equal(got, want) {
		t.Errorf("own service hosts = %q, want %q", got, want)
	}
	if got := ownServiceHosts(Config{}); len(got) != 0 {
		t.Errorf("the embedded default names own services %q", got)
	}
	cfg = Config{PostgresURL: "postgres://app@127.0.0.1:5432/db"}
	if got := ownServiceAddrs(cfg); len(got) != 1 || got[0].String() != "127.0.0.1" {
		t.Errorf("own service addresses = %v", got)
	}
}
