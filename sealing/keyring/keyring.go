// Package keyring keeps the organizations' data keys: each wrapped by the
// deployment's master key and kept in a [Storage], created on first use
// and unwrapped into memory once.
//
// An organization's key has versions: [Keyring.Rotate] adds one, new
// values are sealed under the newest ([Keyring.DataKey]) and every older
// version still opens what it sealed ([Keyring.DataKeyVersion]), so a
// rotation never rewrites the log.
//
// Per-subject keys ([Keyring.SubjectKey]) are data keys of one
// organization for one person who is not a member (an inbox contact), so
// that [Keyring.Forget] can destroy that person's key alone and leave the
// rest of the organization's content readable. The handle is derived from
// the subject under the organization's first key version
// (sealing.DataKey.Handle), so storage does not reveal the subject. No
// event seals under a subject key yet: the inbox, whose contacts they are
// for, has not landed.
//
// The wrapped keys are kept outside the event log on purpose: a key that
// must be destroyed (crypto-shredding an organization or a person) cannot
// live in an append-only log. Where they are kept is the [Storage]: files
// in the data directory ([Open], [FileStorage]: one replica), memory
// ([NewMemory]: tests), or a table shared by every replica of a deployment
// (the PostgreSQL storage of package projections/postgres, given to [New]).
//
// Destroy crypto-shreds an organization: the storage records a tombstone
// and removes its wrapped keys and its subjects' keys, so that the keyring
// never hands out a fresh key for it afterwards (DataKey returns
// ErrDestroyed), also after a restart.
//
// When the storage is shared by several processes, each keeps its own
// unwrapped copies: [WithRecheck] makes a keyring read an organization's
// entry from the storage again once its copy is older than the given age,
// so that a key destroyed or rotated by another process stops being used
// by this one within that age. A version asked for that the copy lacks is
// always read again at once (another process rotated).
//
// The package must never store a data key unwrapped, and never log or
// return key material in an error.
package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/palisadehq/palisade/sealing"
)

// ErrNoKey is returned when the key asked for does not exist: never
// created, or destroyed. What was sealed under it cannot be opened again.
var ErrNoKey = sealing.ErrNoKey

// ErrDestroyed: the organization's data key was destroyed (the
// organization was closed); it is never created again.
var ErrDestroyed = errors.New("keyring: the organization's data key was destroyed")

// Storage keeps the wrapped (master-key-encrypted) keys of a keyring. It
// never sees a key unwrapped. Organization ids and subject handles it is
// given are valid (validOrg, validHandle). Implementations must be safe
// for concurrent use; one shared by several processes must resolve their
// races as each method says.
type Storage interface {
	// Load returns orgID's wrapped key versions, oldest first; found is
	// false when none is stored. It does not look at the tombstone.
	Load(ctx context.Context, orgID string) (versions []sealing.WrappedKey, found bool, err error)
	// Add stores w as version w.Version of orgID's key unless that version
	// is stored already, and returns the versions stored afterwards: when
	// two processes add the same version at once, one wins and both get
	// its key. It fails with [ErrDestroyed] when orgID has a tombstone.
	Add(ctx context.Context, orgID string, w sealing.WrappedKey) ([]sealing.WrappedKey, error)
	// Destroyed reports whether orgID has a tombstone.
	Destroyed(ctx context.Context, orgID string) (bool, error)
	// Destroy records orgID's tombstone, durably, then removes its wrapped
	// keys and its subjects' keys. It is idempotent.
	Destroy(ctx context.Context, orgID string) error
	// LoadSubject returns the wrapped key of one subject of orgID.
	LoadSubject(ctx context.Context, orgID, handle string) (w sealing.WrappedKey, found bool, err error)
	// AddSubject stores w as the key of one subject of orgID unless one is
	// stored already, and returns the one stored (the winner of a race).
	AddSubject(ctx context.Context, orgID, handle string, w sealing.WrappedKey) (sealing.WrappedKey, error)
	// ForgetSubject removes the key of one subject of orgID; a subject
	// without a key is not an error.
	ForgetSubject(ctx context.Context, orgID, handle string) error
	// Orgs lists, sorted, the organizations whose key is stored, a key
	// beside a tombstone included (recovery after a crash between closing
	// an organization and destroying its key looks for these).
	Orgs(ctx context.Context) ([]string, error)
}

// Keyring hands out organizations' data keys.
type Keyring struct {
	store   Storage
	master  sealing.MasterKey
	recheck time.Duration // 0: copies are never read again
	now     func() time.Time

	mu   sync.Mutex
	orgs map[string]*orgKeys
	// subjects caches unwrapped subject keys by org and handle.
	subjects map[subjectRef]subjectKey
}

// orgKeys is one organization's key versions, unwrapped; the newest last.
type orgKeys struct {
	versions []sealing.DataKey
	// digest is versions[0]'s digest key, derived once: every append of
	// an event that records a hash of content asks for it.
	digest sealing.DigestKey
	loaded time.Time
}

type subjectKey struct {
	key    sealing.DataKey
	loaded time.Time
}

func (o *orgKeys) newest() sealing.DataKey { return o.versions[len(o.versions)-1] }

func (o *orgKeys) version(v uint32) (sealing.DataKey, bool) {
	for _, k := range o.versions {
		if k.Version() == v {
			return k, true
		}
	}
	return sealing.DataKey{}, false
}

type subjectRef struct{ org, handle string }

// Option configures a keyring made by [New].
type Option func(*Keyring)

// WithRecheck makes the keyring read an organization's keys (and a
// subject's key) from the storage again when its unwrapped copy is older
// than after, by the clock now (nil: time.Now): a storage shared by
// several processes needs it, so that a key another process destroyed or
// rotated is not used here for longer than after.
func WithRecheck(after time.Duration, now func() time.Time) Option {
	return func(k *Keyring) {
		k.recheck = after
		if now != nil {
			k.now = now
		}
	}
}

// New returns a keyring whose wrapped keys are kept in store.
func New(store Storage, master sealing.MasterKey, opts ...Option) *Keyring {
	k := &Keyring{store: store, master: master, now: time.Now, orgs: map[string]*orgKeys{}, subjects: map[subjectRef]subjectKey{}}
	for _, o := range opts {
		o(k)
	}
	return k
}

// Open returns the keyring kept in the files of dir ([FileStorage]),
// creating dir (0700) if needed.
func Open(dir string, master sealing.MasterKey) (*Keyring, error) {
	store, err := OpenFileStorage(dir)
	if err != nil {
		return nil, err
	}
	return New(store, master), nil
}

// NewMemory returns a keyring that keeps its wrapped keys in memory: what
// it seals cannot be opened by another process or after a restart.
func NewMemory(master sealing.MasterKey) *Keyring {
	return New(NewMemoryStorage(), master)
}

// DataKey returns the newest version of orgID's data key, creating the
// first version on first use. New values are sealed under it.
func (k *Keyring) DataKey(ctx context.Context, orgID string) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.orgLocked(ctx, orgID, true)
	if err != nil {
		return sealing.DataKey{}, err
	}
	return keys.newest(), nil
}

// DataKeyVersion returns the given version of orgID's data key, to open
// what it sealed. It never creates a key: a version that does not exist,
// or an organization without keys, is [ErrNoKey].
func (k *Keyring) DataKeyVersion(ctx context.Context, orgID string, version uint32) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.orgLocked(ctx, orgID, false)
	if err != nil {
		return sealing.DataKey{}, err
	}
	if key, ok := keys.version(version); ok {
		return key, nil
	}
	// Another process sharing the storage may have rotated since the copy
	// was loaded.
	delete(k.orgs, orgID)
	if keys, err = k.orgLocked(ctx, orgID, false); err != nil {
		return sealing.DataKey{}, err
	}
	key, ok := keys.version(version)
	if !ok {
		return sealing.DataKey{}, fmt.Errorf("%w: organization %s has no version %d", ErrNoKey, orgID, version)
	}
	return key, nil
}

// Rotate adds a new version of orgID's data key (the first, if it has
// none) and returns it. Older versions are kept: what they sealed still
// opens. Another process sharing the storage keeps sealing under the
// version it loaded until it reads the organization's keys again (see
// [WithRecheck]; without it, until it restarts); that is safe, only less
// fresh.
func (k *Keyring) Rotate(ctx context.Context, orgID string) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.orgs, orgID) // rotate from what is stored, not from the copy
	keys, err := k.orgLocked(ctx, orgID, false)
	switch {
	case errors.Is(err, ErrDestroyed):
		return sealing.DataKey{}, ErrDestroyed
	case errors.Is(err, ErrNoKey):
		// No key yet: the first version is the rotation.
		keys, err := k.orgLocked(ctx, orgID, true)
		if err != nil {
			return sealing.DataKey{}, err
		}
		return keys.newest(), nil
	case err != nil:
		return sealing.DataKey{}, err
	}
	key, w, err := sealing.NewDataKey(k.master, orgID, keys.newest().Version()+1)
	if err != nil {
		return sealing.DataKey{}, fmt.Errorf("keyring: new data key version: %w", err)
	}
	stored, err := k.store.Add(ctx, orgID, w)
	if err != nil {
		return sealing.DataKey{}, err
	}
	// Another process may have added the same version first: its key won.
	if keys, err = k.unwrapAll(orgID, stored); err != nil {
		return sealing.DataKey{}, err
	}
	k.orgs[orgID] = keys
	if got, ok := keys.version(key.Version()); ok {
		return got, nil
	}
	return sealing.DataKey{}, fmt.Errorf("keyring: rotation of organization %s: version %d not stored", orgID, key.Version())
}

// fresh reports whether a copy loaded at loaded may still be used.
func (k *Keyring) fresh(loaded time.Time) bool {
	return k.recheck <= 0 || k.now().Sub(loaded) < k.recheck
}

// orgLocked returns orgID's versions, loading them, or creating the first
// when create is set; without create, no key is [ErrNoKey]. k.mu is held.
func (k *Keyring) orgLocked(ctx context.Context, orgID string, create bool) (*orgKeys, error) {
	if keys, ok := k.orgs[orgID]; ok && k.fresh(keys.loaded) {
		return keys, nil
	}
	delete(k.orgs, orgID)
	destroyed, err := k.store.Destroyed(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if destroyed {
		// Also ErrNoKey: what the key sealed reads as shredded.
		return nil, fmt.Errorf("%w (%w)", ErrDestroyed, ErrNoKey)
	}
	wrapped, found, err := k.store.Load(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if !found {
		if !create {
			return nil, fmt.Errorf("%w: organization %s has no data key", ErrNoKey, orgID)
		}
		_, w, err := sealing.NewDataKey(k.master, orgID, 1)
		if err != nil {
			return nil, fmt.Errorf("keyring: new data key: %w", err)
		}
		// Another process may create it at the same time: the storage keeps
		// one, and both use it.
		if wrapped, err = k.store.Add(ctx, orgID, w); err != nil {
			if errors.Is(err, ErrDestroyed) {
				return nil, fmt.Errorf("%w (%w)", ErrDestroyed, ErrNoKey)
			}
			return nil, err
		}
	}
	keys, err := k.unwrapAll(orgID, wrapped)
	if err != nil {
		return nil, err
	}
	k.orgs[orgID] = keys
	return keys, nil
}

func (k *Keyring) unwrapAll(orgID string, wrapped []sealing.WrappedKey) (*orgKeys, error) {
	if len(wrapped) == 0 {
		return nil, fmt.Errorf("keyring: organization %s: no key versions stored", orgID)
	}
	keys := &orgKeys{loaded: k.now()}
	for _, w := range wrapped {
		key, err := sealing.UnwrapDataKey(k.master, w, orgID)
		if err != nil {
			return nil, fmt.Errorf("keyring: data key of organization %s: %w", orgID, err)
		}
		keys.versions = append(keys.versions, key)
	}
	keys.digest = keys.versions[0].DigestKey()
	return keys, nil
}

// DigestKey returns the key of orgID's content digests (see
// [sealing.DigestKey]), derived from the organization's first key version,
// which is created on first use. It does not change with [Keyring.Rotate],
// so a digest recorded before a rotation still matches one made after it
// (a document's content, a chunk's vector in the embedding store); it goes
// with the organization's keys on [Keyring.Destroy] ([ErrDestroyed]).
func (k *Keyring) DigestKey(ctx context.Context, orgID string) (sealing.DigestKey, error) {
	if !validOrg(orgID) {
		return sealing.DigestKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.orgLocked(ctx, orgID, true)
	if err != nil {
		return sealing.DigestKey{}, err
	}
	return keys.digest, nil
}

// SubjectHandle returns the opaque name of subject's key in orgID: what a
// sealed value records instead of the subject. It needs the organization's
// key (created on first use).
func (k *Keyring) SubjectHandle(ctx context.Context, orgID, subject string) (string, error) {
	if subject == "" {
		return "", errors.New("keyring: empty subject")
	}
	if !validOrg(orgID) {
		return "", fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.orgLocked(ctx, orgID, true)
	if err != nil {
		return "", err
	}
	return keys.versions[0].Handle(subject), nil
}

// SubjectKey returns the data key of one subject of orgID (a person who is
// not a member), with its handle, creating it on first use.
func (k *Keyring) SubjectKey(ctx context.Context, orgID, subject string) (sealing.DataKey, string, error) {
	handle, err := k.SubjectHandle(ctx, orgID, subject)
	if err != nil {
		return sealing.DataKey{}, "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.subjectLocked(ctx, orgID, handle, true)
	return key, handle, err
}

// SubjectKeyByHandle returns the subject key a sealed value names by its
// handle. It never creates one: a forgotten subject is [ErrNoKey].
func (k *Keyring) SubjectKeyByHandle(ctx context.Context, orgID, handle string) (sealing.DataKey, error) {
	if !validOrg(orgID) || !validHandle(handle) {
		return sealing.DataKey{}, fmt.Errorf("%w: invalid organization or subject handle", ErrNoKey)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.subjectLocked(ctx, orgID, handle, false)
}

// Forget destroys subject's key in orgID: everything sealed under it
// becomes unreadable, everywhere it was copied, while the rest of the
// organization's content stays readable. Forgetting a subject without a
// key is not an error.
func (k *Keyring) Forget(ctx context.Context, orgID, subject string) error {
	handle, err := k.SubjectHandle(ctx, orgID, subject)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.subjects, subjectRef{orgID, handle})
	if err := k.store.ForgetSubject(ctx, orgID, handle); err != nil {
		return fmt.Errorf("keyring: forget subject: %w", err)
	}
	return nil
}

func (k *Keyring) subjectLocked(ctx context.Context, orgID, handle string, create bool) (sealing.DataKey, error) {
	ref := subjectRef{orgID, handle}
	if c, ok := k.subjects[ref]; ok && k.fresh(c.loaded) {
		return c.key, nil
	}
	delete(k.subjects, ref)
	// A subject key is bound to its organization and handle when wrapped,
	// so one person's stored key cannot stand in for another's.
	binding := orgID + "/subject/" + handle
	w, found, err := k.store.LoadSubject(ctx, orgID, handle)
	if err != nil {
		return sealing.DataKey{}, err
	}
	switch {
	case found:
	case !create:
		return sealing.DataKey{}, fmt.Errorf("%w: subject key of organization %s", ErrNoKey, orgID)
	default:
		if _, w, err = sealing.NewDataKey(k.master, binding, 1); err != nil {
			return sealing.DataKey{}, fmt.Errorf("keyring: new subject key: %w", err)
		}
		if w, err = k.store.AddSubject(ctx, orgID, handle, w); err != nil {
			return sealing.DataKey{}, err
		}
	}
	key, err := sealing.UnwrapDataKey(k.master, w, binding)
	if err != nil {
		return sealing.DataKey{}, fmt.Errorf("keyring: subject key: %w", err)
	}
	k.subjects[ref] = subjectKey{key: key, loaded: k.now()}
	return key, nil
}

// Destroy destroys orgID's data key for good: the storage records the
// tombstone and removes the wrapped keys, and the unwrapped copies are
// forgotten. Destroying a key that is already destroyed, or that was
// never created, leaves a tombstone and succeeds: afterwards DataKey
// returns ErrDestroyed either way.
func (k *Keyring) Destroy(ctx context.Context, orgID string) error {
	if !validOrg(orgID) {
		return fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.orgs, orgID)
	for ref := range k.subjects {
		if ref.org == orgID {
			delete(k.subjects, ref)
		}
	}
	return k.store.Destroy(ctx, orgID)
}

// Orgs lists the organizations whose key is stored (a key beside a
// tombstone included: recovery after a crash between closing an
// organization and destroying its key looks for these).
func (k *Keyring) Orgs(ctx context.Context) ([]string, error) {
	return k.store.Orgs(ctx)
}

// Close closes the storage, when it holds resources (a connection pool).
func (k *Keyring) Close() {
	if c, ok := k.store.(interface{ Close() }); ok {
		c.Close()
	}
}

// validOrg accepts organization ids that are safe file names.
func validOrg(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validHandle accepts what sealing.DataKey.Handle returns: 32 lower-case
// hex digits.
func validHandle(h string) bool {
	return len(h) == 32 && len(bytes.Trim([]byte(h), "0123456789abcdef")) == 0
}
