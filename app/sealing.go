package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/sealed"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// OpenKeyring loads the master key (cfg.MasterKey, PALISADE_MASTER_KEY, or
// master.key in the data directory, created on first use) and opens the
// keyring of the organizations' data keys in the data directory's keys/.
// The same keyring seals data-source passwords and the content of events.
func OpenKeyring(cfg Config) (*keyring.Keyring, error) {
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
	keys, err := keyring.Open(filepath.Join(cfg.DataDir, keyring.Dir), master)
	if err != nil {
		return nil, fmt.Errorf("data keys: %w", err)
	}
	return keys, nil
}

// openKeyringToRead is OpenKeyring for tools that read the log: it creates
// no master key. Without one (no PALISADE_MASTER_KEY, no master.key in the
// data directory, as when reading EventStoreDB from another machine) no
// content can be opened, and it all reads as shredded.
func openKeyringToRead(cfg Config) (*keyring.Keyring, error) {
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
	return OpenKeyring(cfg)
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
	if cfg.Logger == nil {
		cfg.Logger = defaultLogger()
	}
	keys, err := openKeyringToRead(cfg)
	if err != nil {
		return nil, err
	}
	log, err := OpenLog(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return sealLog(log, keys), nil
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
