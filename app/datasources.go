package app

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/domain/datasources"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/netguard"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// DefaultSQLiteDir is the subdirectory of the data directory that holds
// SQLite data sources unless PALISADE_SQLITE_ROOT says otherwise.
const DefaultSQLiteDir = "sqlite"

// dataSourcesContext is the databases an organization connects, their
// sealed passwords, grants and schemas.
type dataSourcesContext struct{}

func (dataSourcesContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.DataSourceProjection(asm.models.DataSources)}
}

func (dataSourcesContext) assemble(_ context.Context, asm *assembly) error {
	sources, err := openDataSources(asm.cfg, asm.keys)
	if err != nil {
		return err
	}
	asm.closers = append(asm.closers, sources.close)
	asm.sources = sources
	p := asm.Pipeline
	cmds := commands.NewDataSources(p, sources.keys, sources.tester)
	queries := projections.NewDataSourceQueries(asm.models.DataSources, p)
	asm.Application.Commands.DataSources = cmds
	asm.Application.Queries.DataSources = queries
	asm.web.Commands.DataSources = cmds
	asm.web.Queries.DataSources = queries
	asm.routes = append(asm.routes, httpapi.DataSourceRoutes())
	return nil
}

// dataSources is what the data source commands need from the deployment:
// the organizations' data keys and the connector to their databases.
type dataSources struct {
	keys   *keyring.Keyring
	tester commands.SourceTester
	// exec runs the queries of analytics jobs (and the connection tests
	// unless a test replaced the tester).
	exec *datasource.Executor
	// close releases the executor's connections.
	close func() error
}

// openDataSources takes the keyring of the organizations' data keys (see
// OpenKeyring) and builds the connector behind the network policy
// (PALISADE_DATASOURCE_ALLOWED_NETWORKS) and the SQLite root
// (PALISADE_SQLITE_ROOT; each organization's files are in its own
// directory of it, <root>/<org id>/). A bad value of either, or a root
// that holds the data directory, refuses to start.
func openDataSources(cfg Config, keys *keyring.Keyring) (dataSources, error) {
	policy, err := netguard.ParseAllowed(cfg.DataSourceNetworks)
	if err != nil {
		return dataSources{}, fmt.Errorf("PALISADE_DATASOURCE_ALLOWED_NETWORKS: %w", err)
	}
	policy.Own = ownServiceAddrs(cfg)
	root := cfg.SQLiteRoot
	if root == "" {
		root = filepath.Join(cfg.DataDir, DefaultSQLiteDir)
		if err := os.MkdirAll(root, 0o700); err != nil {
			return dataSources{}, fmt.Errorf("SQLite root: %w", err)
		}
	}
	if root, err = filepath.Abs(root); err != nil {
		return dataSources{}, fmt.Errorf("PALISADE_SQLITE_ROOT: %w", err)
	}
	// Tenants' paths are under <root>/<org>/; a root that holds the data
	// directory would still put the log, the keys and the read-model
	// snapshot within a tenant's reach by name.
	if dataDir, err := filepath.Abs(cfg.DataDir); err == nil {
		if rel, err := filepath.Rel(root, dataDir); err == nil && (rel == "." || filepath.IsLocal(rel)) {
			return dataSources{}, fmt.Errorf("PALISADE_SQLITE_ROOT %s holds the data directory %s: give SQLite data sources a directory of their own", root, dataDir)
		}
	}
	conn := newConnector(policy, root)
	out := dataSources{keys: keys, tester: conn, exec: conn.exec, close: conn.Close}
	if cfg.SourceTester != nil {
		out.tester = cfg.SourceTester
	}
	return out, nil
}

// connector is the commands' SourceTester over the executor of package
// datasource, which dials through the network policy and opens SQLite
// files under the root only.
type connector struct{ exec *datasource.Executor }

func newConnector(policy netguard.Policy, root string) *connector {
	return &connector{exec: datasource.New(datasource.Options{Network: policy, SQLiteRoot: root})}
}

func sourceConfig(orgID string, kind datasources.Kind, conn datasources.Connection, password sealing.Secret) datasource.Config {
	return datasource.Config{Kind: datasource.Kind(kind), Host: conn.Host, Port: conn.Port, Database: conn.Database,
		User: conn.User, Password: password, Params: conn.Params, Org: orgID, Path: conn.Path}
}

// Validate checks the driver parameters the executor accepts for kind.
func (c *connector) Validate(kind datasources.Kind, conn datasources.Connection) error {
	return sourceConfig("", kind, conn, sealing.Secret{}).Validate()
}

// Test connects and returns the schema the connecting user can read.
func (c *connector) Test(ctx context.Context, orgID string, kind datasources.Kind, conn datasources.Connection, password sealing.Secret) (datasources.Schema, error) {
	s, err := c.exec.Test(ctx, sourceConfig(orgID, kind, conn, password))
	if err != nil {
		return datasources.Schema{}, err
	}
	out := datasources.Schema{Tables: make([]datasources.Table, len(s.Tables))}
	for i, t := range s.Tables {
		cols := make([]datasources.Column, len(t.Columns))
		for j, col := range t.Columns {
			cols[j] = datasources.Column{Name: col.Name, Type: col.Type}
		}
		out.Tables[i] = datasources.Table{Name: t.Name, Columns: cols}
	}
	return out, nil
}

// Close closes the executor's pools.
func (c *connector) Close() error { return c.exec.Close() }

// ownServiceHosts returns the hosts of the deployment's own services: its
// read-model database (both roles), its event store (every node of the
// connection string) and its Kafka brokers.
func ownServiceHosts(cfg Config) []string {
	var hosts []string
	for _, raw := range []string{cfg.PostgresURL, cfg.PostgresOwnerURL} {
		if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	if _, rest, ok := strings.Cut(cfg.EventStoreURL, "://"); ok {
		// esdb://[user:pass@]host1:2113,host2:2113[/?options]
		authority, _, _ := strings.Cut(rest, "/")
		authority, _, _ = strings.Cut(authority, "?")
		if _, after, found := strings.Cut(authority, "@"); found {
			authority = after
		}
		for _, node := range strings.Split(authority, ",") {
			hosts = append(hosts, hostOf(node))
		}
	}
	for _, broker := range cfg.KafkaBrokers {
		hosts = append(hosts, hostOf(broker))
	}
	return slices.DeleteFunc(hosts, func(h string) bool { return h == "" })
}

// hostOf is the host of "host:port", or the whole of it without a port.
func hostOf(hostPort string) string {
	if host, _, err := net.SplitHostPort(strings.TrimSpace(hostPort)); err == nil {
		return host
	}
	return strings.Trim(strings.TrimSpace(hostPort), "[]")
}

// ownServiceAddrs resolves ownServiceHosts, so that the data sources'
// default network policy refuses them (netguard.Policy.Own). A name that
// does not resolve now is left out: the services it names are not
// reachable under it either.
func ownServiceAddrs(cfg Config) []netip.Addr {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []netip.Addr
	for _, host := range ownServiceHosts(cfg) {
		if addr, err := netip.ParseAddr(host); err == nil {
			out = append(out, addr.Unmap())
			continue
		}
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			out = append(out, a.Unmap())
		}
	}
	return out
}
