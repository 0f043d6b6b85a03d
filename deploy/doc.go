// Package deploy holds the manifests that run Palisade with its production
// adapters: compose.yaml (KurrentDB, Kafka, PostgreSQL with pgvector and
// Palisade on one machine) and k8s/ (Palisade on Kubernetes). Its only Go
// code is a test that holds the manifests to the configuration variables
// the binary reads; it must never hold configuration the binary does not
// know, nor real secrets.
package deploy
