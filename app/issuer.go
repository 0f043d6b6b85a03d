package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisadehq/palisade/consistency"
	"github.com/palisadehq/palisade/identity"
)

// consistencyLabel names the secret consistency tokens are sealed under,
// derived from the issuer's keys.
const consistencyLabel = "consistency tokens"

// DefaultIssuerKeysPoll is how often a server reads its key set file
// again (Config.IssuerKeysPoll): short enough that a rotation step is
// taken everywhere within seconds, long enough to cost nothing (a read of
// a file of a few kilobytes and a parse).
const DefaultIssuerKeysPoll = 5 * time.Second

// openIssuer returns the built-in issuer: over the key set file
// cfg.IssuerKeys when given (every replica reads the same file, so they
// mint and verify the same tokens), else the data directory's own key,
// created on first start.
func (a *App) openIssuer() (*identity.Issuer, error) {
	cfg := a.cfg
	if cfg.IssuerKeys == "" {
		if cfg.IssuerSigningKID != "" {
			return nil, errors.New("built-in issuer: a signing kid was given without a key set file (--issuer-keys, PALISADE_ISSUER_KEYS)")
		}
		if a.replicated() {
			// Not refused: one replica with the key of its data directory works.
			cfg.Logger.Warn("replicas: no PALISADE_ISSUER_KEYS; this replica signs tokens with the key of its own data directory, " +
				"which other replicas refuse: give every replica the same key set (palisade issuer-keys generate)")
		}
		iss, err := identity.LoadOrCreateIssuer(cfg.DataDir, cfg.Issuer, cfg.Audience)
		if err != nil {
			return nil, fmt.Errorf("built-in issuer: %w", err)
		}
		return iss, nil
	}
	iss, err := identity.OpenIssuerKeys(cfg.IssuerKeys, cfg.IssuerSigningKID, cfg.Issuer, cfg.Audience)
	if err != nil {
		return nil, fmt.Errorf("built-in issuer: %w", err)
	}
	return iss, nil
}

// newConsistencySealer seals consistency tokens under the secret derived
// from the signing key and opens them under every key's. A token is
// handed to a client by one replica and may come back to any other, in
// the middle of a rotation that switches the signing kid: sealed under the
// old key by a replica that has not yet read the new key set file (or
// restarted with the new signing kid), or under the new one by a replica
// that has. Every replica holds both keys then, so each opens both. A
// token outlives the key that sealed it only until that key leaves the
// set; tokens are meant for the next read, seconds later, so the removal
// (after the token lifetime) strands none in use.
//
// The secret is derived rather than configured on its own so that
// rotating the issuer's keys rotates it too, and nothing more has to be
// shared between replicas.
func newConsistencySealer(iss *identity.Issuer) (*consistency.Sealer, error) {
	secrets := iss.DeriveSecrets(consistencyLabel)
	return consistency.NewSealer(secrets[0], secrets[1:]...)
}

// currentSealer is the consistency sealer of the issuer's key set now:
// the key set file's follower replaces it with the set.
type currentSealer struct {
	sealer atomic.Pointer[consistency.Sealer]
}

func (s *currentSealer) Seal(orgID string, position uint64) (string, error) {
	return s.sealer.Load().Seal(orgID, position)
}

func (s *currentSealer) Open(orgID, token string) (uint64, error) {
	return s.sealer.Load().Open(orgID, token)
}

// issuerKeyFile follows the built-in issuer's key set file while the
// server runs, so that each step of a rotation (add a key, make it the
// first, remove the old one) takes effect without a restart. A reload
// reads and checks the whole file and builds every derived value before
// it replaces anything: a file that cannot be used leaves the issuer, the
// verifier and the consistency sealer as they were, and is logged once.
//
// Everything derived from the keys follows: tokens are minted and
// verified with the new set, the JWKS publishes it, consistency tokens
// are sealed under the new signing key and opened under every key of the
// set, audit checkpoints are signed and verified with it (the chain asks
// the issuer for its keys at each use), and tokens the verifier cached
// are verified again.
type issuerKeyFile struct {
	path, signingKID string
	name, audience   string
	issuer           *identity.Issuer
	verifier         *identity.Verifier
	sealer           *currentSealer
	logger           *slog.Logger
	reloads          *prometheus.CounterVec

	mu sync.Mutex
	// failing is the last reload error logged: a bad file is logged once,
	// not at every poll.
	failing string
}

// errNoKeySetFile: ReloadIssuerKeys on a server without --issuer-keys.
var errNoKeySetFile = errors.New("the built-in issuer has no key set file to reload (--issuer-keys, PALISADE_ISSUER_KEYS); its key is the data directory's")

// reload reads the key set file and, when its keys differ from the
// issuer's, swaps them in. It reports whether the keys changed.
func (f *issuerKeyFile) reload() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next, err := identity.OpenIssuerKeys(f.path, f.signingKID, f.name, f.audience)
	if err == nil && f.issuer.SameKeys(next) {
		if f.failing != "" {
			f.logger.Info("issuer key set file readable again; its keys are those in use", "file", f.path, "kids", f.issuer.KeyIDs())
			f.failing = ""
		}
		return false, nil
	}
	var sealer *consistency.Sealer
	if err == nil {
		sealer, err = newConsistencySealer(next)
	}
	if err == nil {
		err = f.issuer.Swap(next)
	}
	if err != nil {
		f.reloads.WithLabelValues("failed").Inc()
		err = fmt.Errorf("issuer key set not reloaded: %w", err)
		if err.Error() != f.failing {
			f.logger.Error("issuer key set file not reloaded; tokens, consistency tokens and audit checkpoints keep the keys in use",
				"file", f.path, "err", err, "signing_kid", f.issuer.KeyID(), "kids", f.issuer.KeyIDs())
			f.failing = err.Error()
		}
		return false, err
	}
	f.sealer.sealer.Store(sealer)
	f.verifier.ForgetVerified()
	f.failing = ""
	f.reloads.WithLabelValues("changed").Inc()
	f.logger.Info("issuer key set reloaded", "file", f.path, "signing_kid", next.KeyID(), "kids", next.KeyIDs())
	return true, nil
}

// follow reloads the file every interval until ctx ends.
func (f *issuerKeyFile) follow(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_, _ = f.reload() // logged by reload
		}
	}
}

// startIssuerKeys sets up the consistency sealer of the issuer's keys
// and, with a key set file, the follower of that file, polling it every
// Config.IssuerKeysPoll until runCtx ends.
func (a *App) startIssuerKeys(runCtx context.Context) error {
	sealer, err := newConsistencySealer(a.Issuer)
	if err != nil {
		return fmt.Errorf("consistency tokens: %w", err)
	}
	a.consistency = &currentSealer{}
	a.consistency.sealer.Store(sealer)
	if a.cfg.IssuerKeys == "" {
		return nil
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "palisade_issuer_key_reloads_total",
		Help: "Reloads of the issuer key set file that changed the keys (outcome changed) or were refused, keeping the keys in use (outcome failed).",
	}, []string{"outcome"})
	a.Registry.MustRegister(reloads)
	a.issuerKeys = &issuerKeyFile{
		path: a.cfg.IssuerKeys, signingKID: a.cfg.IssuerSigningKID, name: a.cfg.Issuer, audience: a.cfg.Audience,
		issuer: a.Issuer, verifier: a.Verifier, sealer: a.consistency,
		logger: a.cfg.Logger.With("component", "issuer-keys"), reloads: reloads,
	}
	every := a.cfg.IssuerKeysPoll
	if every == 0 {
		every = DefaultIssuerKeysPoll
	}
	if every > 0 {
		a.relays.Add(1) // waited for with the relays, by Close
		go func() {
			defer a.relays.Done()
			a.issuerKeys.follow(runCtx, every)
		}()
	}
	return nil
}

// ReloadIssuerKeys reads the issuer key set file (--issuer-keys) now
// rather than at the next poll (palisade serve calls it on SIGHUP), and
// reports whether the keys changed. A file that cannot be used is an
// error, and the keys in use stay.
func (a *App) ReloadIssuerKeys() (bool, error) {
	if a.issuerKeys == nil {
		return false, errNoKeySetFile
	}
	return a.issuerKeys.reload()
}
