// Package datasource owns the connections to tenants' own databases
// (PostgreSQL, MySQL and MariaDB, SQLite files): it tests a connection and
// snapshots the schema the connecting user can read ([Executor.Test]), and
// runs one query under the executor's own controls ([Executor.Query]).
//
// It is the second wall behind the SQL guard (package sqlguard) and must
// never depend on the guard for safety: every control below is set by the
// executor, outside the query's text, so the query cannot undo it, and each
// is tested with the guard off. It must never put a password in an error,
// a log line or a map key, and never reach an address or file the network
// and path walls (package netguard) refuse.
//
// # The walls, per engine
//
// Every connection is dialled through [Options.Network] (netguard.Policy),
// which checks each address actually connected to, cancel requests
// included; link-local addresses are refused before any packet is sent.
// Every query is wrapped as
//
//	SELECT * FROM (<query>) AS palisade_q LIMIT MaxRows+1
//
// and rows are read only while [Limits] MaxRows and MaxBytes (the rows'
// size as JSON) allow; then the fetch stops and the rows are closed.
//
// PostgreSQL (pgx): a READ ONLY transaction; statement_timeout and
// lock_timeout set with SET LOCAL by the executor (a statement's timer is
// armed when it starts, so set_config inside the query cannot lift it);
// the caller's deadline too, and a cancelled context sends a cancel request
// so the query stops on the server; one statement per query (the extended
// protocol, unnamed statements); a message larger than twice the default
// MaxBytes (at least 16 MB) breaks the connection rather than being read.
// Only TLS mode (sslmode) and application_name come from Params; the PG*
// environment variables of the Palisade process decide nothing else.
//
// MySQL and MariaDB (go-sql-driver/mysql): multiStatements, allowAllFiles
// (so no LOAD DATA LOCAL INFILE) and interpolateParams off; START
// TRANSACTION READ ONLY; on MariaDB SET STATEMENT max_statement_time=… FOR
// the query, on MySQL the MAX_EXECUTION_TIME hint on the outermost SELECT;
// when the context ends first, KILL QUERY from a second connection, so the
// statement stops on the server. The dialer is set per executor
// (Config.DialFunc): no global registration. The one global the driver
// forces is its sql.Register("mysql") at init, which this package does not
// use (it opens through mysql.NewConnector).
//
// SQLite (modernc.org/sqlite): the file is resolved under
// [Options.SQLiteRoot] by netguard.SQLitePath and opened with mode=ro and
// query_only; SQLITE_LIMIT_ATTACHED is 0 and an authorizer allows reading
// and functions only (no ATTACH, PRAGMA, write or load_extension, which
// this driver does not build anyway), and, when [Config.Tables] lists
// tables, reads of those tables only; SQLITE_LIMIT_LENGTH bounds any value
// to MaxBytes. The time limit is the context's deadline: modernc interrupts
// the statement through the connection's progress handler (every 1000
// virtual-machine steps), which the driver keeps for itself.
//
// # The database role to give Palisade
//
// The executor holds whatever the database lets its user do, so give it a
// role that can read the tables a source exposes and nothing else:
//
// PostgreSQL:
//
//	CREATE ROLE palisade_reader LOGIN PASSWORD '…'
//	    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
//	ALTER ROLE palisade_reader SET default_transaction_read_only = on;
//	ALTER ROLE palisade_reader SET statement_timeout = '30s';
//	REVOKE ALL ON DATABASE sales FROM PUBLIC;  -- no TEMP, no CONNECT for all
//	GRANT CONNECT ON DATABASE sales TO palisade_reader;
//	GRANT USAGE ON SCHEMA public TO palisade_reader;
//	GRANT SELECT ON sales TO palisade_reader;  -- each exposed table, no more
//
// Never make it a member of pg_read_server_files, pg_execute_server_program,
// pg_read_all_data or pg_signal_backend. System catalogs stay readable to
// every PostgreSQL role; the guard keeps queries out of them.
//
// MySQL and MariaDB:
//
//	CREATE USER 'palisade_reader'@'<palisade host>' IDENTIFIED BY '…'
//	    WITH MAX_STATEMENT_TIME 30;  -- MariaDB; MySQL has no such limit
//	GRANT SELECT ON sales.sales TO 'palisade_reader'@'<palisade host>';
//
// No FILE, PROCESS, SUPER or any global privilege. SQLite has no roles:
// list the exposed tables in [Config.Tables], and keep the root directory
// writable by the operator only.
//
// scripts/provision-datasources creates exactly these on the local
// servers for the tests.
//
// # Results
//
// Values are JSON-ready: see [Result]. NUMERIC and DECIMAL come out as
// decimal strings, never floats, so sums are exact; [Result.SHA256] is
// over [CanonicalJSON].
//
// # Errors
//
// [ErrTimeout] for any time limit, context.Canceled (wrapped) when the
// caller cancelled, the netguard errors (wrapped) when the network or path
// policy refused, [*DatabaseError] with the database's own message, and
// [ErrInvalidConfig] from [Config.Validate].
package datasource
