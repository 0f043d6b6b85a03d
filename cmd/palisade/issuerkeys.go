package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/palisadehq/palisade/identity"
)

const issuerKeysUsage = `usage: palisade issuer-keys <command> --file FILE [flags]

Manage the built-in issuer's key set file: a JSON Web Key Set of Ed25519
private keys (mode 0600) that every replica reads (serve --issuer-keys,
PALISADE_ISSUER_KEYS). The key named by --issuer-signing-kid
(PALISADE_ISSUER_SIGNING_KID), else the file's first, signs tokens and audit
checkpoints; every key verifies and is published in the JWKS. Running
servers read the file again every --issuer-keys-poll (5s) and on SIGHUP:
each change below takes effect without a restart.

commands:
  generate  create a set with one new key (refuses to replace a file);
            --from-data-dir DIR starts it with that directory's key instead
  add       append a new key, which verifies only until it is made the signing key
  promote   make a key (--kid) the file's first, the one servers sign with
            when no signing kid is set
  list      print each kid and whether it signs
  remove    remove a key (--kid); tokens and checkpoints it signed no longer verify
  jwks      print the public JWK Set (to keep for palisade audit verify --jwks)

Rotation, with no signing kid set: add; wait until every replica has read
the file (its JWKS lists the new kid) and verifiers have fetched the JWKS
again; promote the new key; once tokens of the old key have expired, keep
the JWKS, remove the old key. With a signing kid set, the switch is a change
of that setting and a restart. README.md has the details.`

// issuerKeys runs palisade issuer-keys. The data keys of organizations are
// palisade keys; these are the token issuer's, hence a command of their own.
func issuerKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args) {
		fmt.Fprintln(stdout, issuerKeysUsage)
		if len(args) == 0 {
			return errors.New("issuer-keys: name a command")
		}
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet("issuer-keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", env("PALISADE_ISSUER_KEYS", ""), "the key set file (PALISADE_ISSUER_KEYS)")
	signingKID := fs.String("issuer-signing-kid", env("PALISADE_ISSUER_SIGNING_KID", ""), "the kid the servers sign with; empty is the file's first key (PALISADE_ISSUER_SIGNING_KID)")
	var kid, fromDataDir *string
	switch cmd {
	case "remove":
		kid = fs.String("kid", "", "the kid of the key to remove")
	case "promote":
		kid = fs.String("kid", "", "the kid of the key to sign with")
	case "generate":
		fromDataDir = fs.String("from-data-dir", "", "start the set with this data directory's issuer key (same kid) instead of a new key, so that its tokens keep verifying")
	}
	switch cmd {
	case "generate", "add", "promote", "list", "remove", "jwks":
	default:
		fmt.Fprintln(stderr, issuerKeysUsage)
		return fmt.Errorf("issuer-keys: unknown command %q", cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("issuer-keys %s: --file is required (or PALISADE_ISSUER_KEYS)", cmd)
	}
	switch cmd {
	case "generate":
		var key identity.IssuerKey
		var err error
		if *fromDataDir != "" {
			key, err = identity.DataDirIssuerKey(*fromDataDir)
		} else {
			key, err = identity.GenerateIssuerKey()
		}
		if err != nil {
			return fmt.Errorf("issuer-keys generate: %w", err)
		}
		if err := identity.WriteIssuerKeys(*file, []identity.IssuerKey{key}, true); err != nil {
			if errors.Is(err, identity.ErrKeySetExists) {
				return fmt.Errorf("issuer-keys generate: %s already exists; use add to add a key to it", *file)
			}
			return fmt.Errorf("issuer-keys generate: %w", err)
		}
		fmt.Fprintln(stdout, key.KeyID)
		fmt.Fprintf(stderr, "palisade issuer-keys: created %s with signing key %s\n", *file, key.KeyID)
		return nil
	case "add":
		keys, err := identity.ReadIssuerKeys(*file)
		if err != nil {
			return fmt.Errorf("issuer-keys add: %w", err)
		}
		key, err := identity.GenerateIssuerKey()
		if err != nil {
			return err
		}
		if err := identity.WriteIssuerKeys(*file, append(keys, key), false); err != nil {
			return fmt.Errorf("issuer-keys add: %w", err)
		}
		fmt.Fprintln(stdout, key.KeyID)
		fmt.Fprintf(stderr, "palisade issuer-keys: added %s to %s; it verifies only, until promoted (palisade issuer-keys promote --kid %s)\n", key.KeyID, *file, key.KeyID)
		return nil
	case "promote":
		if *kid == "" {
			return errors.New("issuer-keys promote: --kid is required")
		}
		keys, err := identity.ReadIssuerKeys(*file)
		if err != nil {
			return fmt.Errorf("issuer-keys promote: %w", err)
		}
		i := slices.IndexFunc(keys, func(k identity.IssuerKey) bool { return k.KeyID == *kid })
		if i < 0 {
			return fmt.Errorf("issuer-keys promote: no key %q in %s", *kid, *file)
		}
		if i > 0 {
			promoted := append([]identity.IssuerKey{keys[i]}, slices.Delete(slices.Clone(keys), i, i+1)...)
			if err := identity.WriteIssuerKeys(*file, promoted, false); err != nil {
				return fmt.Errorf("issuer-keys promote: %w", err)
			}
		}
		if *signingKID != "" && *signingKID != *kid {
			fmt.Fprintf(stderr, "palisade issuer-keys: %s is first in %s, but servers given --issuer-signing-kid %s (PALISADE_ISSUER_SIGNING_KID) keep signing with that key; unset it and restart them\n", *kid, *file, *signingKID)
			return nil
		}
		fmt.Fprintf(stderr, "palisade issuer-keys: %s is first in %s; servers sign with it once they have read the file\n", *kid, *file)
		return nil
	case "list":
		keys, err := identity.ReadIssuerKeys(*file)
		if err != nil {
			return fmt.Errorf("issuer-keys list: %w", err)
		}
		signing, err := signingOf(keys, *signingKID)
		if err != nil {
			return fmt.Errorf("issuer-keys list: %w", err)
		}
		for _, k := range keys {
			role := "verifies"
			if k.KeyID == signing {
				role = "signs"
				if *signingKID == "" {
					role = "signs (first key)"
				}
			}
			fmt.Fprintf(stdout, "%s\t%s\n", k.KeyID, role)
		}
		return nil
	case "remove":
		if *kid == "" {
			return errors.New("issuer-keys remove: --kid is required")
		}
		keys, err := identity.ReadIssuerKeys(*file)
		if err != nil {
			return fmt.Errorf("issuer-keys remove: %w", err)
		}
		i := slices.IndexFunc(keys, func(k identity.IssuerKey) bool { return k.KeyID == *kid })
		if i < 0 {
			return fmt.Errorf("issuer-keys remove: no key %q in %s", *kid, *file)
		}
		if len(keys) == 1 {
			return fmt.Errorf("issuer-keys remove: %q is the only key of %s; add its successor first", *kid, *file)
		}
		if *kid == *signingKID {
			return fmt.Errorf("issuer-keys remove: %q is the signing key (--issuer-signing-kid, PALISADE_ISSUER_SIGNING_KID); switch the servers to another key first", *kid)
		}
		rest := slices.Delete(slices.Clone(keys), i, i+1)
		if *signingKID == "" && i == 0 {
			// Removing the first key silently makes the next one sign.
			return fmt.Errorf("issuer-keys remove: %q is the first key, which servers sign with when no signing kid is set; "+
				"give --issuer-signing-kid with the kid the servers sign with now (%s would sign next)", *kid, rest[0].KeyID)
		}
		if err := identity.WriteIssuerKeys(*file, rest, false); err != nil {
			return fmt.Errorf("issuer-keys remove: %w", err)
		}
		fmt.Fprintf(stderr, "palisade issuer-keys: removed %s from %s; tokens and audit checkpoints it signed no longer verify against this set\n", *kid, *file)
		return nil
	case "jwks":
		keys, err := identity.ReadIssuerKeys(*file)
		if err != nil {
			return fmt.Errorf("issuer-keys jwks: %w", err)
		}
		doc, err := identity.PublicJWKS(keys)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", doc)
		return err
	}
	return nil
}

// signingOf is the kid a server given keys and signingKID signs with.
func signingOf(keys []identity.IssuerKey, signingKID string) (string, error) {
	if signingKID == "" {
		return keys[0].KeyID, nil
	}
	for _, k := range keys {
		if k.KeyID == signingKID {
			return signingKID, nil
		}
	}
	return "", fmt.Errorf("signing kid %q (--issuer-signing-kid, PALISADE_ISSUER_SIGNING_KID) is not in the key set", signingKID)
}
