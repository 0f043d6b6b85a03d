package readmodeltest_test

import (
	"testing"

	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/projections/readmodeltest"
)

// TestMemory runs the suite against the memory adapters, knowledge read
// models included. (projections/memory's own contract test predates them
// and passes none; once it does, this test can go.)
func TestMemory(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(*testing.T) readmodeltest.Models {
		return readmodeltest.Models{
			Tenancy: memory.NewTenancy(), Bots: memory.NewBots(), Audit: memory.NewAudit(),
			Knowledge: memory.NewKnowledge(), Chunks: memory.NewChunks(), Conversations: memory.NewConversations(),
			DataSources: memory.NewDataSources(),
			Analytics:   memory.NewAnalytics(),
			Jobs:        memory.NewJobs(),
		}
	})
}
