package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/identity"
)

func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the issuer key")
	platform := fs.Bool("platform", false, "mint a platform token (may only create organizations)")
	org := fs.String("org", "", "organization id of a user token")
	sub := fs.String("sub", "", "subject (user name or id)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	scope := fs.String("scope", "", "space-separated permissions that narrow the token")
	issuer := fs.String("issuer", env("PALISADE_ISSUER", app.DefaultIssuer), "iss of the built-in issuer")
	audience := fs.String("audience", env("PALISADE_AUDIENCE", app.DefaultAudience), "aud of the token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	if *platform == (*org != "") {
		return errors.New("token: give exactly one of --platform and --org ORG_ID")
	}
	iss, err := identity.LoadOrCreateIssuer(*dataDir, *issuer, *audience)
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
