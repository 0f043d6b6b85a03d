package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/netguard"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// DefaultSQLiteDir is the subdirectory of the data directory that holds
// SQLite data sources unless PALISADE_SQLITE_ROOT says otherwise.
const DefaultSQLiteDir = "sqlite"

// dataSources is what the data source commands need from the deployment:
// the organizations' data keys and the connector to their databases.
type dataSources struct {
	keys   commands.Keyring
	tester commands.SourceTester
}

// openDataSources loads the master key (PALISADE_MASTER_KEY, or master.key
// in the data directory, created on first start), opens the keyring of the
// organizations' data keys beside it, and builds the connector behind the
// network policy (PALISADE_DATASOURCE_ALLOWED_NETWORKS) and the SQLite root
// (PALISADE_SQLITE_ROOT). A bad value of either refuses to start.
func openDataSources(cfg Config) (dataSources, error) {
	var (
		master sealing.MasterKey
		err    error
	)
	if cfg.MasterKey.IsZero() {
		if master, err = sealing.LoadOrCreateMasterKey(cfg.DataDir); err != nil {
			return dataSources{}, fmt.Errorf("master key: %w", err)
		}
	} else if master, err = sealing.ParseMasterKey(cfg.MasterKey.Reveal()); err != nil {
		return dataSources{}, fmt.Errorf("PALISADE_MASTER_KEY: %w", err)
	}
	keys, err := keyring.Open(filepath.Join(cfg.DataDir, keyring.Dir), master)
	if err != nil {
		return dataSources{}, fmt.Errorf("data keys: %w", err)
	}
	policy, err := netguard.ParseAllowed(cfg.DataSourceNetworks)
	if err != nil {
		return dataSources{}, fmt.Errorf("PALISADE_DATASOURCE_ALLOWED_NETWORKS: %w", err)
	}
	root := cfg.SQLiteRoot
	if root == "" {
		root = filepath.Join(cfg.DataDir, DefaultSQLiteDir)
	}
	if root, err = filepath.Abs(root); err != nil {
		return dataSources{}, fmt.Errorf("PALISADE_SQLITE_ROOT: %w", err)
	}
	tester := cfg.SourceTester
	if tester == nil {
		tester = newConnector(policy, root)
	}
	return dataSources{keys: keys, tester: tester}, nil
}

// connector is the commands' SourceTester until the executor is wired.
type connector struct {
	policy netguard.Policy
	root   string
}

func newConnector(policy netguard.Policy, root string) *connector {
	return &connector{policy: policy, root: root}
}

func (c *connector) Validate(datasources.Kind, datasources.Connection) error { return nil }

func (c *connector) Test(context.Context, datasources.Kind, datasources.Connection, sealing.Secret) (datasources.Schema, error) {
	return datasources.Schema{}, errors.New("no connector in this build")
}
