package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/identity"
)

// writeKeySet writes a key set file of n fresh keys and returns its path
// and the keys' kids in file order.
func writeKeySet(t *testing.T, n int) (string, []string) {
	t.Helper()
	keys := make([]identity.IssuerKey, n)
	kids := make([]string, n)
	for i := range keys {
		k, err := identity.GenerateIssuerKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i], kids[i] = k, k.KeyID
	}
	path := filepath.Join(t.TempDir(), "issuer-keys.json")
	if err := identity.WriteIssuerKeys(path, keys, true); err != nil {
		t.Fatal(err)
	}
	return path, kids
}

// jwksKids reads the kids a harness publishes at /.well-known/jwks.json.
func jwksKids(t *testing.T, h *harness) []string {
	t.Helper()
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	h.must(http.StatusOK, http.MethodGet, "/.well-known/jwks.json", "", nil).json(t, &doc)
	var kids []string
	for _, k := range doc.Keys {
		if k.D != "" {
			t.Fatalf("the JWKS publishes a private key")
		}
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// TestIssuerKeySetAcrossReplicas: two Apps, each with its own data
// directory, on one log (an EventStoreDB) and one key set file, as two
// replicas behind a load balancer. A token minted by either is accepted by
// the other, both publish every key, and a consistency token one issues
// makes the other wait for the write it names. Then one replica is
// restarted signing with the second key (the rotation's middle step):
// tokens and consistency tokens still cross both ways.
func TestIssuerKeySetAcrossReplicas(t *testing.T) {
	keys, kids := writeKeySet(t, 2)
	log := esdbtest.New(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	replica := func(dir, signingKID string) *harness {
		return openHarness(t, dir, func(cfg *app.Config) {
			cfg.EventStoreURL = log.URL()
			cfg.IssuerKeys, cfg.IssuerSigningKID = keys, signingKID
		})
	}
	a, b := replica(dirA, ""), replica(dirB, "")
	if a.app.Issuer.KeyID() != kids[0] || b.app.Issuer.KeyID() != kids[0] {
		t.Fatalf("signing kids %s, %s; want the file's first, %s", a.app.Issuer.KeyID(), b.app.Issuer.KeyID(), kids[0])
	}
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, identity.IssuerKeyFile)); !os.IsNotExist(err) {
			t.Fatalf("a key set in use, yet a key was created in %s: %v", dir, err)
		}
	}
	want := slices.Sorted(slices.Values(kids))
	for name, h := range map[string]*harness{"a": a, "b": b} {
		if got := jwksKids(t, h); !slices.Equal(got, want) {
			t.Fatalf("replica %s publishes kids %v, want %v", name, got, want)
		}
	}

	// A's platform token creates an organization on B.
	org, ownerOnB := b.createOrgWith(a.platform, "acme", "olivia")
	ownerOnA := a.userToken(org, "olivia")
	// A applies the log on its own schedule: wait until it knows the owner
	// (a state to reach, not a time to meet).
	a.waitFor(t, func() bool {
		return a.do(http.MethodGet, "/v1/bots", ownerOnA, nil).status == http.StatusOK
	})

	// Read-your-writes across replicas: B's consistency token makes A wait.
	crossRead := func(writer, reader *harness, writeTok, readTok, name string) {
		t.Helper()
		r := writer.must(http.StatusCreated, http.MethodPost, "/v1/bots", writeTok, map[string]any{
			"name": name, "instructions": "Answer about " + name, "grants": map[string]any{"tools": []string{"search"}},
		})
		var bot struct {
			ID string `json:"id"`
		}
		r.json(t, &bot)
		token := r.header.Get("Palisade-Consistency")
		if token == "" {
			t.Fatalf("no consistency token on POST /v1/bots")
		}
		reader.must(http.StatusOK, http.MethodGet, "/v1/bots/"+bot.ID+"?consistency="+url.QueryEscape(token), readTok, nil)
	}
	crossRead(b, a, ownerOnB, ownerOnA, "b-wrote")
	crossRead(a, b, ownerOnA, ownerOnB, "a-wrote")

	// A token of a key outside the set is refused, as before.
	stranger, err := identity.NewIssuer([]identity.IssuerKey{mustGenerate(t)}, "", app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	c := identity.Claims{Kind: identity.KindUser, Org: org}
	c.Subject = "olivia"
	forged, err := stranger.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a.must(http.StatusUnauthorized, http.MethodGet, "/v1/bots", forged, nil)

	// The middle of a rotation: B restarts signing with the second key
	// while A still signs with the first. Each accepts the other's tokens
	// and consistency tokens.
	oldOwnerOnB := ownerOnB
	b.close()
	b = replica(dirB, kids[1])
	if b.app.Issuer.KeyID() != kids[1] {
		t.Fatalf("B signs with %s, want %s", b.app.Issuer.KeyID(), kids[1])
	}
	ownerOnB = b.userToken(org, "olivia")
	b.waitFor(t, func() bool {
		return b.do(http.MethodGet, "/v1/bots", ownerOnB, nil).status == http.StatusOK
	})
	b.must(http.StatusOK, http.MethodGet, "/v1/bots", oldOwnerOnB, nil) // minted before, under kid 1
	a.must(http.StatusOK, http.MethodGet, "/v1/bots", ownerOnB, nil)    // minted now, under kid 2
	crossRead(b, a, ownerOnB, ownerOnA, "b-rotated")
	crossRead(a, b, ownerOnA, ownerOnB, "a-not-yet")
}

func mustGenerate(t *testing.T) identity.IssuerKey {
	t.Helper()
	k, err := identity.GenerateIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// createOrgWith creates an organization with the given platform token and
// returns its id and the owner's token minted by h.
func (h *harness) createOrgWith(platform, name, owner string) (string, string) {
	h.t.Helper()
	var org struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/orgs", platform, map[string]string{"name": name, "owner_sub": owner}).json(h.t, &org)
	return org.ID, h.userToken(org.ID, owner)
}

// waitFor polls cond until it holds, failing the test after a generous
// bound (a replica catching up with a shared log).
func (h *harness) waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not catch up with the log in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIssuerKeySetRefusedAtStart: a key set Open cannot use stops the
// start with a message that names the file's problem.
func TestIssuerKeySetRefusedAtStart(t *testing.T) {
	t.Parallel()
	good, kids := writeKeySet(t, 2)
	doc, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	publicOnly := set.Keys[0]
	delete(publicOnly, "d")
	pub, _ := json.Marshal(map[string]any{"keys": []any{publicOnly}})
	dupe, _ := json.Marshal(map[string]any{"keys": []any{set.Keys[1], set.Keys[1]}})

	tests := []struct {
		name, path, kid, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "none.json"), "", "no such file"},
		{"not JSON", write("k.json", "not json", 0o600), "", "not a JSON Web Key Set"},
		{"readable by others", write("k.json", string(doc), 0o644), "", "chmod 600"},
		{"not Ed25519", write("k.json", `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}]}`, 0o600), "", "must be Ed25519"},
		{"public key only", write("k.json", string(pub), 0o600), "", `private part ("d") is missing`},
		{"duplicate kid", write("k.json", string(dupe), 0o600), "", "every kid must be unique"},
		{"signing kid absent", good, "not-" + kids[0], "is not in the key set"},
		{"signing kid without a set", "", kids[0], "without a key set file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := app.Open(context.Background(), app.Config{
				DataDir: t.TempDir(), IssuerKeys: tt.path, IssuerSigningKID: tt.kid,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err == nil {
				_ = a.Close()
				t.Fatal("Open accepted the key set")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v; want a message naming %q", err, tt.want)
			}
		})
	}
}
