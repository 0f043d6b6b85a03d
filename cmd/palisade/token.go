package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/identity"
)

func token(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("token", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dataDir := flags.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the issuer key")
	platform := flags.Bool("platform", false, "mint a platform token (may only create organizations)")
	org := flags.String("org", "", "organization id of a user token")
	sub := flags.String("sub", "", "subject (user name or id)")
	ttl := flags.Duration("ttl", time.Hour, "token lifetime")
	scope := flags.String("scope", "", "space-separated permissions that narrow the token")
	issuer := flags.String("issuer", env("PALISADE_ISSUER", app.DefaultIssuer), "iss of the built-in issuer")
	audience := flags.String("audience", env("PALISADE_AUDIENCE", app.DefaultAudience), "aud of the token")
	initKey := flags.Bool("init", false, "create the issuer's signing key when the data directory has none (else that is an error)")
	issuerKeys := flags.String("issuer-keys", env("PALISADE_ISSUER_KEYS", ""), "mint with this key set file, as the servers given it do, instead of the data directory's key (PALISADE_ISSUER_KEYS)")
	signingKID := flags.String("issuer-signing-kid", env("PALISADE_ISSUER_SIGNING_KID", ""), "kid of the --issuer-keys key that signs; empty is the file's first (PALISADE_ISSUER_SIGNING_KID)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	if *platform == (*org != "") {
		return errors.New("token: give exactly one of --platform and --org ORG_ID")
	}
	if err := checkScope(*scope); err != nil {
		return err
	}
	iss, err := tokenIssuer(*dataDir, *issuerKeys, *signingKID, *issuer, *audience, *initKey, stderr)
	if err != nil {
		return err
	}
	c := identity.Claims{Kind: identity.KindUser, Org: *org, Scope: *scope}
	c.Subject = *sub
	if *platform {
		c.Kind, c.Org = identity.KindPlatform, ""
	}
	tok, err := iss.Mint(c, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// tokenIssuer is the issuer token mints with: the key set file when given
// (the one the servers read), else the data directory's key, created only
// with --init. It says on stderr which key it used.
func tokenIssuer(dataDir, keySet, signingKID, name, audience string, initKey bool, stderr io.Writer) (*identity.Issuer, error) {
	if keySet != "" {
		if initKey {
			return nil, errors.New("token: --init creates a data directory's key; a key set file is created with palisade issuer-keys generate")
		}
		iss, err := identity.OpenIssuerKeys(keySet, signingKID, name, audience)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		fmt.Fprintf(stderr, "palisade token: key set %s, signing key %s\n", keySet, iss.KeyID())
		return iss, nil
	}
	if signingKID != "" {
		return nil, errors.New("token: --issuer-signing-kid names a key of a key set file: give --issuer-keys (PALISADE_ISSUER_KEYS) too")
	}
	keyPath := filepath.Join(dataDir, identity.IssuerKeyFile)
	_, statErr := os.Stat(keyPath)
	created := errors.Is(statErr, fs.ErrNotExist)
	if created && !initKey {
		return nil, fmt.Errorf("token: no signing key at %s: a server started on this data directory creates one; "+
			"give the right --data-dir (PALISADE_DATA_DIR), the servers' --issuer-keys (PALISADE_ISSUER_KEYS), or --init to create a new key (tokens it signs are valid only for a server on this directory)", keyPath)
	}
	iss, err := identity.LoadOrCreateIssuer(dataDir, name, audience)
	if err != nil {
		return nil, fmt.Errorf("token: signing key of %s: %w", dataDir, err)
	}
	verb := "using"
	if created {
		verb = "created"
	}
	fmt.Fprintf(stderr, "palisade token: data directory %s, %s signing key %s\n", dataDir, verb, keyPath)
	return iss, nil
}

// checkScope refuses a --scope entry that names no permission (the
// standard OpenID Connect scopes pass), as the server would refuse the
// token.
func checkScope(scope string) error {
	var perms []string
	for _, name := range strings.Fields(scope) {
		switch name {
		case "openid", "profile", "email", "address", "phone", "offline_access":
		default:
			perms = append(perms, name)
		}
	}
	if len(perms) == 0 {
		return nil
	}
	if _, err := access.ParsePermissions(perms); err != nil {
		return fmt.Errorf("token: --scope: %w", err)
	}
	return nil
}
