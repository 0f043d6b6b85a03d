package app

import (
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/consistency"
	"github.com/palisadehq/palisade/identity"
)

// consistencyLabel names the secret consistency tokens are sealed under,
// derived from the issuer's keys.
const consistencyLabel = "consistency tokens"

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
// the middle of a rolling restart that switches the signing kid: sealed
// under the old key by a replica not yet restarted, or under the new one
// by a replica already restarted. Every replica holds both keys then, so
// each opens both. A token outlives the key that sealed it only until that
// key leaves the set; tokens are meant for the next read, seconds later,
// so the removal (after the token lifetime) strands none in use.
//
// The secret is derived rather than configured on its own so that
// rotating the issuer's keys rotates it too, and nothing more has to be
// shared between replicas.
func newConsistencySealer(iss *identity.Issuer) (*consistency.Sealer, error) {
	secrets := iss.DeriveSecrets(consistencyLabel)
	return consistency.NewSealer(secrets[0], secrets[1:]...)
}
