package memory

import (
	"testing"

	"github.com/palisadehq/palisade/projections/readmodeltest"
)

func TestContract(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(*testing.T) readmodeltest.Models {
		return readmodeltest.Models{Tenancy: NewTenancy(), Bots: NewBots(), Audit: NewAudit()}
	})
}
