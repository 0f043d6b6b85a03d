package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/sealing"
)

// dataSourceRoutes mounts the routes of data sources.
func (s *Server) dataSourceRoutes(v1 *mux.Router) {
	v1.HandleFunc("/data-sources", s.createDataSource).Methods(http.MethodPost)
	v1.HandleFunc("/data-sources", s.listDataSources).Methods(http.MethodGet)
	v1.HandleFunc("/data-sources/{id}", s.getDataSource).Methods(http.MethodGet)
	v1.HandleFunc("/data-sources/{id}", s.updateDataSource).Methods(http.MethodPatch)
	v1.HandleFunc("/data-sources/{id}", s.deleteDataSource).Methods(http.MethodDelete)
	v1.HandleFunc("/data-sources/{id}/test", s.testDataSource).Methods(http.MethodPost)
	v1.HandleFunc("/data-sources/{id}/grants", s.setDataSourceGrants).Methods(http.MethodPut)
}

// ConnectionRequest is a data source's connection in a request: host,
// port, database, user, password and params, or path for sqlite. The
// password is a sealing.Secret from the moment it is decoded: nothing
// prints it, and it is sealed before anything records it.
type ConnectionRequest struct {
	Host     string            `json:"host"`
	Port     int               `json:"port"`
	Database string            `json:"database"`
	User     string            `json:"user"`
	Password *sealing.Secret   `json:"password"`
	Params   map[string]string `json:"params"`
	Path     string            `json:"path"`
}

func (c ConnectionRequest) input() commands.ConnectionInput {
	return commands.ConnectionInput{Host: c.Host, Port: c.Port, Database: c.Database, User: c.User,
		Password: c.Password, Params: c.Params, Path: c.Path}
}

// AllowedTableRequest is one entry of allowed_tables: a table name
// ("sales") or an object naming the table and the only columns exposed
// ({"name": "sales", "columns": ["region", "total"]}).
type AllowedTableRequest datasources.AllowedTable

// UnmarshalJSON reads either form, refusing unknown fields of the object.
func (t *AllowedTableRequest) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var name string
		if err := json.Unmarshal(data, &name); err != nil {
			return err
		}
		*t = AllowedTableRequest{Name: name}
		return nil
	}
	var obj struct {
		Name    string   `json:"name"`
		Columns []string `json:"columns"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("an allowed table is a name or {name, columns}: %w", err)
	}
	*t = AllowedTableRequest{Name: obj.Name, Columns: obj.Columns}
	return nil
}

func allowedTables(in []AllowedTableRequest) []datasources.AllowedTable {
	out := make([]datasources.AllowedTable, len(in))
	for i, t := range in {
		out[i] = datasources.AllowedTable(t)
	}
	return out
}

// CreateDataSourceRequest is the body of POST /v1/data-sources.
type CreateDataSourceRequest struct {
	Name          string                `json:"name"`
	Kind          string                `json:"kind"`
	Connection    ConnectionRequest     `json:"connection"`
	AllowedTables []AllowedTableRequest `json:"allowed_tables"`
}

// UpdateDataSourceRequest is the body of PATCH /v1/data-sources/{id};
// absent fields stay. A connection replaces the current one whole, except
// that one without a password keeps the current password.
type UpdateDataSourceRequest struct {
	Name          *string                `json:"name"`
	Connection    *ConnectionRequest     `json:"connection"`
	AllowedTables *[]AllowedTableRequest `json:"allowed_tables"`
}

// SetDataSourceGrantsRequest is the body of PUT /v1/data-sources/{id}/grants;
// grants is required ([] leaves the source to its managers).
type SetDataSourceGrantsRequest struct {
	Grants *[]datasources.Grant `json:"grants"`
}

type dataSourceBody struct {
	projections.DataSource
	Consistency string `json:"consistency,omitempty"`
}

// dataSourceTestBody is the answer of POST /v1/data-sources/{id}/test.
type dataSourceTestBody struct {
	OK          bool               `json:"ok"`
	Error       string             `json:"error,omitempty"`
	Schema      datasources.Schema `json:"schema"`
	Consistency string             `json:"consistency,omitempty"`
}

func (s *Server) createDataSource(w http.ResponseWriter, r *http.Request) {
	var in CreateDataSourceRequest
	if !s.decode(w, r, &in) {
		return
	}
	who := principalFrom(r.Context())
	created, err := s.deps.App.Commands.DataSources.Create(r.Context(), who, commands.DataSourceInput{
		Name: in.Name, Kind: in.Kind, Connection: in.Connection.input(), AllowedTables: allowedTables(in.AllowedTables),
	})
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	consistencyToken := s.afterCommand(w, r, created.Position)
	w.Header().Set("Location", "/v1/data-sources/"+created.ID)
	e := created.DataSource
	// The creator may not see the source once created (only owners and
	// admins manage sources), so the answer is built from the record.
	writeJSON(w, http.StatusCreated, dataSourceBody{DataSource: projections.DataSource{
		ID: created.ID, Name: e.Name, Kind: string(e.Kind),
		Connection: projections.DataSourceConnection{Host: e.Connection.Host, Port: e.Connection.Port,
			Database: e.Connection.Database, User: e.Connection.User, Params: e.Connection.Params, Path: e.Connection.Path,
			PasswordSet: e.Connection.SealedPassword != ""},
		AllowedTables: e.AllowedTables, Grants: []datasources.Grant{}, State: string(datasources.Untested),
		CreatedBy: who.Subject, CreatedAt: created.At, UpdatedAt: created.At,
	}, Consistency: consistencyToken})
}

func (s *Server) listDataSources(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	list, err := s.deps.App.Queries.DataSources.List(r.Context(), principalFrom(r.Context()), page)
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	writeList(w, list, page, func(d projections.DataSource) string { return d.ID })
}

func (s *Server) getDataSource(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	d, err := s.deps.App.Queries.DataSources.Get(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	writeJSON(w, http.StatusOK, dataSourceBody{DataSource: d})
}

// dataSourceChanged answers a command on a data source with the source as
// it is now.
func (s *Server) dataSourceChanged(w http.ResponseWriter, r *http.Request, res commands.Result, err error) {
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	d, err := s.deps.App.Queries.DataSources.Get(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	writeJSON(w, http.StatusOK, dataSourceBody{DataSource: d, Consistency: consistencyToken})
}

func (s *Server) updateDataSource(w http.ResponseWriter, r *http.Request) {
	var in UpdateDataSourceRequest
	if !s.decode(w, r, &in) {
		return
	}
	var conn *commands.ConnectionInput
	if in.Connection != nil {
		c := in.Connection.input()
		conn = &c
	}
	var tables *[]datasources.AllowedTable
	if in.AllowedTables != nil {
		t := allowedTables(*in.AllowedTables)
		tables = &t
	}
	res, err := s.deps.App.Commands.DataSources.Update(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"], in.Name, conn, tables)
	s.dataSourceChanged(w, r, res, err)
}

func (s *Server) setDataSourceGrants(w http.ResponseWriter, r *http.Request) {
	var in SetDataSourceGrantsRequest
	if !s.decode(w, r, &in) {
		return
	}
	if in.Grants == nil {
		writeError(w, r, fmt.Errorf("%w: grants is required; [] removes every grant", domain.ErrInvalid), "data source")
		return
	}
	res, err := s.deps.App.Commands.DataSources.SetGrants(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"], *in.Grants)
	s.dataSourceChanged(w, r, res, err)
}

func (s *Server) deleteDataSource(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.App.Commands.DataSources.Delete(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) testDataSource(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.App.Commands.DataSources.Test(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	schema := res.Schema
	if schema.Tables == nil {
		schema.Tables = []datasources.Table{}
	}
	writeJSON(w, http.StatusOK, dataSourceTestBody{OK: res.OK, Error: res.Error, Schema: schema, Consistency: consistencyToken})
}
