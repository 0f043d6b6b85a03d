package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/quota"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
	"github.com/palisadehq/palisade/snapshot"
)

// Snapshots of the in-memory read models (the embedded default).
//
// A start restores the memory read models, the quota book, the open turns
// and the open analytics jobs from readModelsSnapshot with the one
// position they were all at, then catches up from the log after it, so a
// restart no longer replays the whole log. The snapshot is written when the
// server stops (all those groups stopped at the same position). A crash
// leaves the last one in place: it is still good, and the next start
// catches up from it over everything written since.
//
// It is only trusted when everything matches, and otherwise ignored (the
// whole log is replayed, as without one): the file's format and the shape
// of every saved type (a binary that saves other fields writes another
// format), the log's identity (the id of its first event: another log, say a
// fresh one in the same directory, has another), and the log still holding
// the event the snapshot ended at, at the same position (a log cut back or
// replaced is not the one it was taken from).
//
// Sealed content: each organization's part is sealed under the
// organization's data key (sealing.SealContent, bound to the snapshot and
// the part's place in it), so the file holds no more plaintext than the
// log does, and closing an organization shreds its part with the key. A
// part whose key is gone when the snapshot is read means the organization
// was closed after it was taken: the snapshot is deleted and the log
// replayed, so nothing closed comes back. An organization whose key was
// already destroyed when the snapshot was written is saved in clear: its
// read models already dropped its content when they applied its
// OrganizationClosed (a snapshot is not written unless they all did).
const (
	readModelsSnapshot = "readmodels.snapshot"
	snapshotMagic      = "palisade read-model snapshot"
	// snapshotFileVersion is the layout of the file around the parts.
	snapshotFileVersion = 1
	// snapshotFrame is how much of an organization's part is sealed at
	// once (sealing.MaxContent bounds one value).
	snapshotFrame = 4 << 20
)

// sideState is what the snapshot keeps of the in-memory groups that are not
// memory read models. None of it is content.
type sideState struct {
	Quotas   quota.BookState
	Turns    []conversation.OpenTurn
	OpenJobs []eventstore.StreamName
	// OpenIngestions are the document versions waiting for ingestion.
	OpenIngestions []commands.OpenIngestion
}

// memorySnapshot is what a snapshot saves and restores: set only with
// memory read models.
type memorySnapshot struct {
	path        string
	models      memory.Models
	checkpoints *memory.Checkpoints
	// groups are the names of the groups whose positions checkpoints keeps.
	groups    []string
	quotas    *quota.Book
	turns     *conversation.OpenTurns
	openJobs  *commands.AnalyticsRunner
	ingestion *commands.IngestionRunner
}

// snapshotFormat names the layout and the shape of every saved type.
func snapshotFormat() (string, error) {
	mem, err := memory.SnapshotFormat()
	if err != nil {
		return "", err
	}
	side, err := snapshot.Fingerprint(reflect.TypeFor[sideState]())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d/%s/%s", snapshotFileVersion, mem, side[:16]), nil
}

// logIdentity names the log: the id of its first event ("" when empty).
func logIdentity(ctx context.Context, log eventstore.Store) (string, error) {
	first, err := log.ReadAll(ctx, 0, eventstore.Filter{}, 1)
	if err != nil || len(first) == 0 {
		return "", err
	}
	return first[0].ID.String(), nil
}

// eventAt returns the id of the event at position, "" when the log holds
// none there.
func eventAt(ctx context.Context, log eventstore.Store, position uint64) (string, error) {
	envs, err := log.ReadAll(ctx, position-1, eventstore.Filter{}, 1)
	if err != nil || len(envs) == 0 || envs[0].Position != position {
		return "", err
	}
	return envs[0].ID.String(), nil
}

// position returns the position every snapshotted group is at, false when
// they differ.
func (s *memorySnapshot) position() (uint64, bool) {
	positions := s.checkpoints.Positions()
	var at uint64
	for i, g := range s.groups {
		if i == 0 {
			at = positions[g]
		} else if positions[g] != at {
			return 0, false
		}
	}
	return at, true
}

// save writes the snapshot at the groups' common position, atomically
// (a temporary file of the data directory, synced, renamed over the old
// one, the directory synced), readable by the owner only. It writes
// nothing when the groups are not at one position or at the start of
// the log.
func (s *memorySnapshot) save(ctx context.Context, log eventstore.Store, keys *keyring.Keyring) (written bool, err error) {
	at, ok := s.position()
	if !ok || at == 0 {
		return false, nil
	}
	format, err := snapshotFormat()
	if err != nil {
		return false, err
	}
	logID, err := logIdentity(ctx, log)
	if err != nil {
		return false, fmt.Errorf("snapshot: log identity: %w", err)
	}
	lastID, err := eventAt(ctx, log, at)
	if err != nil || lastID == "" {
		return false, fmt.Errorf("snapshot: event at %d: %v", at, err)
	}
	var idBytes [16]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		return false, err
	}
	id := hex.EncodeToString(idBytes[:])

	tmp, err := os.CreateTemp(filepath.Dir(s.path), readModelsSnapshot+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	enc := snapshot.NewEncoder(tmp)
	enc.String(snapshotMagic)
	enc.String(format)
	enc.String(logID)
	enc.Uvarint(at)
	enc.String(lastID)
	enc.String(id)
	side := sideState{Quotas: s.quotas.State(), Turns: s.turns.State(), OpenJobs: s.openJobs.OpenJobStreams(),
		OpenIngestions: s.ingestion.OpenVersions()}
	if err := enc.Encode(side); err != nil {
		return false, err
	}
	orgs := s.models.Orgs()
	enc.Uvarint(uint64(len(orgs)))
	for _, org := range orgs {
		if err := s.saveOrg(ctx, enc, keys, id, org); err != nil {
			return false, err
		}
	}
	enc.String(snapshotMagic) // the end: a cut file is refused
	if err := enc.Flush(); err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	return true, syncDir(filepath.Dir(s.path))
}

// saveOrg writes one organization's part: its name, the id of the key it
// is sealed under ("" for an organization closed and purged), and its
// frames, ended by a nil one.
func (s *memorySnapshot) saveOrg(ctx context.Context, enc *snapshot.Encoder, keys *keyring.Keyring, id, org string) error {
	key, err := keys.DataKey(ctx, org)
	clear := errors.Is(err, keyring.ErrDestroyed)
	if err != nil && !clear {
		return fmt.Errorf("snapshot of %s: data key: %w", org, err)
	}
	if clear {
		// Its key is gone: it was closed. Saved in clear only once every
		// read model has dropped its content (its row marked closed; the
		// groups are at one position, so all applied the closure).
		scope, err := access.EventScope(org)
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", org, err)
		}
		o, err := s.models.Tenancy.Org(ctx, scope)
		if err != nil || !o.Closed {
			return fmt.Errorf("snapshot of %s: its data key is destroyed but its read models have not applied its closure", org)
		}
	}
	enc.String(org)
	if clear {
		enc.String("")
	} else {
		enc.String(key.ID())
	}
	frames := &frameWriter{enc: enc, seal: func(i int, plain []byte) ([]byte, error) {
		if clear {
			return slices.Clone(plain), nil
		}
		return sealing.SealContent(key, org, plain, framePurpose(id, i))
	}}
	if err := s.models.SaveOrg(frames, org); err != nil {
		return err
	}
	if err := frames.flush(); err != nil {
		return fmt.Errorf("snapshot of %s: %w", org, err)
	}
	enc.Bytes(nil)
	return enc.Err()
}

// framePurpose binds a sealed frame to its snapshot and place, so frames
// cannot be swapped between snapshots or reordered.
func framePurpose(snapshotID string, i int) string {
	return fmt.Sprintf("read-model snapshot %s frame %d", snapshotID, i)
}

// frameWriter cuts what is written into frames of snapshotFrame bytes,
// each sealed before it is written.
type frameWriter struct {
	enc  *snapshot.Encoder
	seal func(i int, plain []byte) ([]byte, error)
	buf  []byte
	n    int
}

func (w *frameWriter) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		room := snapshotFrame - len(w.buf)
		take := min(room, len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == snapshotFrame {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return written, nil
}

func (w *frameWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	sealed, err := w.seal(w.n, w.buf)
	if err != nil {
		return err
	}
	w.enc.Bytes(sealed)
	w.n++
	w.buf = w.buf[:0]
	return w.enc.Err()
}

// errSnapshotUnusable: the snapshot must not be restored; the log is
// replayed instead.
var errSnapshotUnusable = errors.New("snapshot unusable")

// restoredSnapshot is a snapshot read back: fresh memory read models
// holding its rows, the rest of the groups' state, and its position.
type restoredSnapshot struct {
	models memory.Models
	side   sideState
	at     uint64
}

// readSnapshot reads the snapshot at path into fresh memory read models.
// It fails with errSnapshotUnusable (wrapped with why) when there is none,
// or it is of another format or log, cut short, altered, or names an
// organization whose key is gone; nothing it read is used then.
func readSnapshot(ctx context.Context, path string, log eventstore.Store, keys *keyring.Keyring) (restoredSnapshot, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return restoredSnapshot{}, fmt.Errorf("%w: none", errSnapshotUnusable)
	}
	if err != nil {
		return restoredSnapshot{}, fmt.Errorf("%w: %w", errSnapshotUnusable, err)
	}
	defer f.Close()
	dec := snapshot.NewDecoder(f)
	format, err := snapshotFormat()
	if err != nil {
		return restoredSnapshot{}, err
	}
	if magic := dec.String(); magic != snapshotMagic {
		return restoredSnapshot{}, fmt.Errorf("%w: not a snapshot", errSnapshotUnusable)
	}
	if got := dec.String(); got != format {
		return restoredSnapshot{}, fmt.Errorf("%w: format %q, this binary writes %q", errSnapshotUnusable, got, format)
	}
	logID, at, lastID, id := dec.String(), dec.Uvarint(), dec.String(), dec.String()
	if err := dec.Err(); err != nil {
		return restoredSnapshot{}, fmt.Errorf("%w: %w", errSnapshotUnusable, err)
	}
	if current, err := logIdentity(ctx, log); err != nil {
		return restoredSnapshot{}, fmt.Errorf("snapshot: log identity: %w", err)
	} else if current != logID {
		return restoredSnapshot{}, fmt.Errorf("%w: taken from another log (first event %s, this log's %q)", errSnapshotUnusable, logID, current)
	}
	if current, err := eventAt(ctx, log, at); err != nil {
		return restoredSnapshot{}, fmt.Errorf("snapshot: event at %d: %w", at, err)
	} else if current != lastID {
		return restoredSnapshot{}, fmt.Errorf("%w: the log does not hold its last event %s at %d (beyond its end, or another log)", errSnapshotUnusable, lastID, at)
	}
	out := restoredSnapshot{models: memory.NewModels(), at: at}
	if err := dec.Decode(&out.side); err != nil {
		return restoredSnapshot{}, fmt.Errorf("%w: %w", errSnapshotUnusable, err)
	}
	// Reading and opening the frames is sequential; decoding the
	// organizations' parts runs on every core, one part per goroutine.
	var (
		wg      sync.WaitGroup
		slots   = make(chan struct{}, runtime.GOMAXPROCS(0))
		errOnce sync.Once
		loadErr error
	)
	n := dec.Uvarint()
	for range n {
		org, plain, err := openOrg(ctx, dec, keys, id)
		if err != nil {
			wg.Wait()
			return restoredSnapshot{}, err
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := out.models.LoadOrg(plain, org); err != nil {
				errOnce.Do(func() { loadErr = fmt.Errorf("%w: %w", errSnapshotUnusable, err) })
			}
		}()
	}
	wg.Wait()
	if loadErr != nil {
		return restoredSnapshot{}, loadErr
	}
	if end := dec.String(); dec.Err() != nil || end != snapshotMagic {
		return restoredSnapshot{}, fmt.Errorf("%w: cut short (%v)", errSnapshotUnusable, dec.Err())
	}
	return out, nil
}

// openOrg reads one organization's part and opens its frames.
func openOrg(ctx context.Context, dec *snapshot.Decoder, keys *keyring.Keyring, id string) (string, *bytes.Buffer, error) {
	org, keyID := dec.String(), dec.String()
	if err := dec.Err(); err != nil {
		return "", nil, fmt.Errorf("%w: %w", errSnapshotUnusable, err)
	}
	var key sealing.DataKey
	if keyID != "" {
		version, err := sealing.ParseKeyID(keyID)
		if err != nil {
			return "", nil, fmt.Errorf("%w: organization %s: key %q: %w", errSnapshotUnusable, org, keyID, err)
		}
		if key, err = keys.DataKeyVersion(ctx, org, version); err != nil {
			// Closed (or its key lost) since: its part must not come back.
			return "", nil, fmt.Errorf("%w: organization %s: %w", errSnapshotUnusable, org, err)
		}
		if key.ID() != keyID {
			return "", nil, fmt.Errorf("%w: organization %s: key %s is not the one it was sealed under", errSnapshotUnusable, org, key.ID())
		}
	}
	plain := &bytes.Buffer{}
	for i := 0; ; i++ {
		frame := dec.Bytes()
		if err := dec.Err(); err != nil {
			return "", nil, fmt.Errorf("%w: %w", errSnapshotUnusable, err)
		}
		if frame == nil {
			break
		}
		if keyID != "" {
			opened, err := sealing.OpenContent(key, org, frame, framePurpose(id, i))
			if err != nil {
				return "", nil, fmt.Errorf("%w: organization %s, frame %d: %w", errSnapshotUnusable, org, i, err)
			}
			frame = opened
		}
		plain.Write(frame)
	}
	return org, plain, nil
}

// apply puts the restored state of the groups that are not memory read
// models back, and sets every snapshotted group's position.
func (s *memorySnapshot) apply(r restoredSnapshot) {
	s.quotas.Restore(r.side.Quotas)
	s.turns.Restore(r.side.Turns)
	s.openJobs.RestoreOpenJobs(r.side.OpenJobs)
	s.ingestion.RestoreOpen(r.side.OpenIngestions)
	positions := make(map[string]uint64, len(s.groups))
	for _, g := range s.groups {
		positions[g] = r.at
	}
	s.checkpoints.Restore(positions)
}

// remove deletes the snapshot, so that a part it holds of an organization
// closed since cannot be read again, even by an older binary.
func (s *memorySnapshot) remove() error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(s.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openMemorySnapshot reads the data directory's snapshot, when usable,
// into fresh memory read models; otherwise it deletes it (an organization
// closed since must not come back from it) and returns empty models.
func (a *App) openMemorySnapshot(ctx context.Context) (memory.Models, *restoredSnapshot, error) {
	path := filepath.Join(a.cfg.DataDir, readModelsSnapshot)
	start := time.Now()
	r, err := readSnapshot(ctx, path, a.Log, a.keys)
	switch {
	case err == nil:
		a.cfg.Logger.Info("read models restored from their snapshot", "position", r.at, "took", time.Since(start).String())
		return r.models, &r, nil
	case errors.Is(err, errSnapshotUnusable):
		a.cfg.Logger.Info("no usable read-model snapshot: the log is replayed from its start", "why", err.Error())
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return memory.Models{}, nil, fmt.Errorf("remove the unusable snapshot: %w", err)
		}
		return memory.NewModels(), nil, nil
	default:
		return memory.Models{}, nil, err
	}
}

// saveSnapshot writes the read-model snapshot, when the read models are in
// memory, and logs what it did.
func (a *App) saveSnapshot(ctx context.Context) {
	if a.snapshot == nil {
		return
	}
	start := time.Now()
	written, err := a.snapshot.save(ctx, a.Log, a.keys)
	switch {
	case err != nil:
		a.cfg.Logger.Error("writing the read-model snapshot", "err", err)
	case written:
		a.cfg.Logger.Info("read-model snapshot written", "took", time.Since(start).String())
	default:
		a.cfg.Logger.Info("no read-model snapshot written: the read models are not at one position")
	}
}
