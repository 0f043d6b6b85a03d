package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/sealed"
	"github.com/palisadehq/palisade/projections/postgres"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// keyRecheck is how long a replica uses its copy of an organization's
// data keys before reading them from PostgreSQL again: the longest a key
// that another replica destroyed (closing the organization) or rotated is
// still used here. A version it lacks is read at once (keyring.WithRecheck).
const keyRecheck = 30 * time.Second

// OpenKeyring loads the master key (cfg.MasterKey, PALISADE_MASTER_KEY, or
// master.key in the data directory, created on first use) and opens the
// keyring of the organizations' data keys. On the replicated stack (the
// log in EventStoreDB and the read models in PostgreSQL: several replicas
// may run) the wrapped keys are kept in PostgreSQL, beside the read
// models, shared by every replica (postgres.DataKeys, in a schema already
// migrated: Open migrates it first), and key files left in
// the data directory by a single-replica deployment are moved there
// (importKeyFiles). Otherwise they are files of the data directory's
// keys/. The same keyring seals data-source passwords and the content of
// events. The caller closes it.
func OpenKeyring(ctx context.Context, cfg Config) (*keyring.Keyring, error) {
	if cfg.Logger == nil {
		cfg.Logger = defaultLogger()
	}
	var (
		master sealing.MasterKey
		err    error
	)
	if cfg.MasterKey.IsZero() {
		if master, err = sealing.LoadOrCreateMasterKey(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
	} else if master, err = sealing.ParseMasterKey(cfg.MasterKey.Reveal()); err != nil {
		return nil, fmt.Errorf("PALISADE_MASTER_KEY: %w", err)
	}
	dir := filepath.Join(cfg.DataDir, keyring.Dir)
	if cfg.EventStoreURL == "" || cfg.PostgresURL == "" {
		keys, err := keyring.Open(dir, master)
		if err != nil {
			return nil, fmt.Errorf("data keys: %w", err)
		}
		return keys, nil
	}
	shared, err := postgres.OpenDataKeys(ctx, cfg.PostgresURL, cfg.PostgresSchema)
	if err != nil {
		return nil, fmt.Errorf("data keys: %w", err)
	}
	if err := importKeyFiles(ctx, dir, shared, master, cfg.Logger); err != nil {
		shared.Close()
		return nil, err
	}
	return keyring.New(shared, master, keyring.WithRecheck(keyRecheck, nil)), nil
}

// importKeyFiles moves the key files of dir (a deployment that ran with one
// replica before) into the shared storage: each organization's versions
// and subject keys are added, its tombstone recorded, and the files
// removed once the storage holds the same keys, so that no copy outlives
// a later destroy. It runs at every start and is idempotent: a crash
// halfway is finished by the next start. A file whose key differs from
// the one stored for the same organization and version (two replicas that
// each created a key on their own disk) stops the start: the operator must
// decide, since one of the two keys' content is unreadable.
func importKeyFiles(ctx context.Context, dir string, to keyring.Storage, master sealing.MasterKey, logger *slog.Logger) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	files, err := keyring.OpenFileStorage(dir)
	if err != nil {
		return fmt.Errorf("data key files: %w", err)
	}
	tombstones, err := files.Tombstones(ctx)
	if err != nil {
		return fmt.Errorf("data key files: %w", err)
	}
	orgs, err := files.Orgs(ctx)
	if err != nil {
		return fmt.Errorf("data key files: %w", err)
	}
	if len(tombstones) == 0 && len(orgs) == 0 {
		return nil
	}
	for _, org := range tombstones {
		if err := to.Destroy(ctx, org); err != nil {
			return fmt.Errorf("import data key files: %w", err)
		}
	}
	imported := 0
	for _, org := range orgs {
		if destroyed, err := to.Destroyed(ctx, org); err != nil {
			return fmt.Errorf("import data key files: %w", err)
		} else if !destroyed {
			if err := importOrgKeys(ctx, files, to, org); err != nil {
				return err
			}
			imported++
		}
	}
	// Everything is in the shared storage: the files go, tombstones last,
	// so that a crash halfway never leaves a tombstone beside a key that
	// was not destroyed.
	for _, org := range append(orgs, tombstones...) {
		if err := files.Remove(ctx, org); err != nil {
			return fmt.Errorf("remove imported data key files: %w", err)
		}
	}
	logger.Warn("moved the data key files of the data directory into PostgreSQL, shared by the replicas",
		"organizations", imported, "destroyed", len(tombstones)+len(orgs)-imported)
	return nil
}

func importOrgKeys(ctx context.Context, files *keyring.FileStorage, to keyring.Storage, org string) error {
	versions, _, err := files.Load(ctx, org)
	if err != nil {
		return fmt.Errorf("import data key files: %w", err)
	}
	for _, w := range versions {
		stored, err := to.Add(ctx, org, w)
		if err != nil {
			return fmt.Errorf("import data key files: organization %s: %w", org, err)
		}
		if i := slices.IndexFunc(stored, func(s sealing.WrappedKey) bool { return s.Version == w.Version }); i < 0 || !sameWrapped(stored[i], w) {
			return fmt.Errorf("import data key files: organization %s: the key file's version %d differs from the one in PostgreSQL; "+
				"remove one of them (what it sealed becomes unreadable) and start again", org, w.Version)
		}
	}
	handles, err := files.Subjects(ctx, org)
	if err != nil {
		return fmt.Errorf("import data key files: %w", err)
	}
	for _, h := range handles {
		w, found, err := files.LoadSubject(ctx, org, h)
		if err != nil || !found {
			return fmt.Errorf("import data key files: organization %s: subject key: %w", org, err)
		}
		stored, err := to.AddSubject(ctx, org, h, w)
		if err != nil {
			return fmt.Errorf("import data key files: organization %s: %w", org, err)
		}
		if !sameWrapped(stored, w) {
			return fmt.Errorf("import data key files: organization %s: a subject key file differs from the one in PostgreSQL", org)
		}
	}
	return nil
}

func sameWrapped(a, b sealing.WrappedKey) bool {
	return a.Version == b.Version && a.MasterKeyID == b.MasterKeyID &&
		bytes.Equal(a.Nonce, b.Nonce) && bytes.Equal(a.Ciphertext, b.Ciphertext)
}

// openKeyringToRead is OpenKeyring for tools that read the log: it creates
// no master key. Without one (no PALISADE_MASTER_KEY, no master.key in the
// data directory, as when reading EventStoreDB from another machine) no
// content can be opened, and it all reads as shredded.
func openKeyringToRead(ctx context.Context, cfg Config) (*keyring.Keyring, error) {
	if cfg.MasterKey.IsZero() {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, sealing.MasterKeyFile)); errors.Is(err, fs.ErrNotExist) {
			cfg.Logger.Warn("no master key (PALISADE_MASTER_KEY or master.key in the data directory): events' content reads as shredded")
			master, err := sealing.GenerateMasterKey()
			if err != nil {
				return nil, err
			}
			return keyring.NewMemory(master), nil
		}
	}
	return OpenKeyring(ctx, cfg)
}

// sealLog wraps the log as stored with the sealing of events' content
// (package eventstore/sealed): what the application appends and reads is
// opened, what the log, the relay and the bus hold is sealed.
func sealLog(log eventstore.Store, keys *keyring.Keyring) *sealed.Store {
	return sealed.New(log, sealed.NewSealer(events.NewRegistry(), keys))
}

// OpenStore opens the event log cfg configures, as Open does: the
// embedded log in cfg.DataDir, or EventStoreDB / KurrentDB when
// cfg.EventStoreURL is set. Events' content is opened with the keyring of
// the data directory (see OpenKeyring; no master key is created): content
// whose key was destroyed reads as shredded. It starts nothing else (no read model, bus or
// issuer), for tools that read the log offline, such as palisade audit
// replay. The embedded log is locked while a server has it open. The
// caller closes the store.
func OpenStore(ctx context.Context, cfg Config) (eventstore.Store, error) {
	s, err := OpenAuditStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// AuditStore is the log OpenStore opens, with the keys of its
// organizations' content digests, for the tools that show content
// redacted as the audit API does (palisade audit replay, narrative,
// export). Closing it closes its keyring (on the replicated stack the
// keyring holds a PostgreSQL pool).
type AuditStore struct {
	*sealed.Store
	keys *keyring.Keyring
}

// OpenAuditStore is OpenStore, with the store's digest keys.
func OpenAuditStore(ctx context.Context, cfg Config) (*AuditStore, error) {
	if cfg.Logger == nil {
		cfg.Logger = defaultLogger()
	}
	keys, err := openKeyringToRead(ctx, cfg)
	if err != nil {
		return nil, err
	}
	log, err := OpenLog(ctx, cfg)
	if err != nil {
		keys.Close()
		return nil, err
	}
	return &AuditStore{Store: sealLog(log, keys), keys: keys}, nil
}

// Close closes the log and the keyring.
func (s *AuditStore) Close() error {
	err := s.Store.Close()
	s.keys.Close()
	return err
}

// ContentDigest returns orgID's digest function for redacted content
// (events.Registry.RedactContentWith): the organization's keyed digest,
// as the audit API shows it. It never creates a key: an organization
// without one (its key destroyed, so its content reads as shredded; or a
// log written before content was sealed, whose content is in the log in
// clear) gets nil, the plain SHA-256. The digest key derives from the
// first key version, as keyring.Keyring.DigestKey's does.
func (s *AuditStore) ContentDigest(ctx context.Context, orgID string) (func(sum string) string, error) {
	key, err := s.keys.DataKeyVersion(ctx, orgID, 1)
	switch {
	case errors.Is(err, keyring.ErrNoKey):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("digest key of organization %s: %w", orgID, err)
	}
	return key.DigestKey().Digest, nil
}

// OpenLog is OpenStore without opening content: the log as stored, its
// content sealed, as the relay publishes it and a hash chain covers it.
func OpenLog(ctx context.Context, cfg Config) (eventstore.Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = defaultLogger()
	}
	// Each branch checks err itself: a nil *embedded.Store or *esdb.Store
	// returned as a Store would not be a nil Store.
	if cfg.EventStoreURL == "" {
		store, err := openEmbeddedLog(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return store, nil
	}
	store, err := openEventStoreDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return store, nil
}
