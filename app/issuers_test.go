package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/identity"
)

// extIssuer is an external OpenID Connect provider: its JWK Set is served
// by an httptest server, its tokens are minted with go-jose, a JOSE library
// independent of the one Palisade verifies with.
type extIssuer struct {
	t      *testing.T
	name   string
	signer jose.Signer
	keys   *httptest.Server
}

const extIssuerName = "https://idp.test/realms/acme"

func newExtIssuer(t *testing.T, name string) *extIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "idp-key-1", Algorithm: string(jose.ES256), Use: "sig"}}}
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(keys.Close)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "idp-key-1"))
	if err != nil {
		t.Fatal(err)
	}
	return &extIssuer{t: t, name: name, signer: signer, keys: keys}
}

// trust makes Palisade trust the issuer by its JWKS URL, as --trust-jwks does.
func (x *extIssuer) trust(cfg *app.Config) {
	cfg.TrustedJWKS = append(cfg.TrustedJWKS, app.TrustedJWKS{Issuer: x.name, URL: x.keys.URL, Algorithms: []string{"ES256"}})
}

// token mints a token of kind for sub in org.
func (x *extIssuer) token(org, sub, kind string) string {
	x.t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": x.name, "sub": sub, "aud": app.DefaultAudience, "org": org, "kind": kind,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text(),
	}
	raw, err := josejwt.Signed(x.signer).Claims(claims).Serialize()
	if err != nil {
		x.t.Fatalf("mint with go-jose: %v", err)
	}
	return raw
}

// TestExternalIssuersAreBoundToOrganizations is issue 9 item 4 at the HTTP
// edge: a trusted external issuer asserts only organizations that bound it,
// only as members of that issuer (never as a built-in member of the same
// sub), and never as a service account.
func TestExternalIssuersAreBoundToOrganizations(t *testing.T) {
	t.Parallel()
	idp := newExtIssuer(t, extIssuerName)
	h := openHarness(t, t.TempDir(), idp.trust)
	issuers := "/v1/org/issuers?issuer=" + url.QueryEscape(idp.name)
	externalDan := access.PrincipalSubject(idp.name, "dan")

	// dan of the built-in issuer owns Acme; erin owns Globex.
	acme, danOwner := h.createOrg("Acme", "dan")
	globex, erin := h.createOrg("Globex", "erin")
	admin := h.addMember(acme, danOwner, "ada", "admin")

	// The review's case: the external issuer's dan is not Acme's owner dan.
	extDan := idp.token(acme, "dan", identity.KindUser)
	r := tokBearer(t, h, http.MethodGet, "/v1/org", extDan, nil)
	tokRequireUnauthorized(t, r, extDan)
	tokRequireDenial(t, h, r, http.MethodGet, "/v1/org", extDan, tokDenial{reason: "issuer_not_bound", org: acme, subject: externalDan})
	r = tokBearer(t, h, http.MethodPost, "/v1/bots", extDan, []byte(`{"name":"x","instructions":"y","grants":{}}`))
	tokRequireUnauthorized(t, r, extDan)

	// Binding needs owners:manage; only issuers the deployment trusts.
	h.must(http.StatusForbidden, http.MethodPut, issuers, admin, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodPut, "/v1/org/issuers?issuer="+url.QueryEscape("https://unknown.test"), danOwner, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodPut, "/v1/org/issuers?issuer=palisade", danOwner, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodPut, "/v1/org/issuers", danOwner, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodDelete, "/v1/org/issuers", danOwner, nil)
	var bound struct {
		Issuer      string `json:"issuer"`
		Consistency string `json:"consistency"`
	}
	h.must(http.StatusOK, http.MethodPut, issuers, danOwner, nil).json(t, &bound)
	if bound.Issuer != idp.name || bound.Consistency == "" {
		t.Fatalf("bind = %+v", bound)
	}
	bound = struct {
		Issuer      string `json:"issuer"`
		Consistency string `json:"consistency"`
	}{}
	h.must(http.StatusOK, http.MethodPut, issuers, danOwner, nil).json(t, &bound)
	if bound.Consistency != "" {
		t.Fatalf("binding again recorded something: %+v", bound)
	}
	var list struct {
		Items []struct {
			Issuer  string `json:"issuer"`
			BoundBy string `json:"bound_by"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/org/issuers", danOwner, nil).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].Issuer != idp.name || list.Items[0].BoundBy != "dan" {
		t.Fatalf("bound issuers = %+v", list.Items)
	}

	// Bound, but the issuer's dan is no member yet.
	r = tokBearer(t, h, http.MethodGet, "/v1/org", extDan, nil)
	tokRequireUnauthorized(t, r, extDan)
	tokRequireDenial(t, h, r, http.MethodGet, "/v1/org", extDan, tokDenial{reason: "unknown_principal", org: acme, subject: externalDan})

	// The owner adds the issuer's dan as a viewer.
	var added struct {
		Issuer string   `json:"issuer"`
		Sub    string   `json:"sub"`
		Roles  []string `json:"roles"`
	}
	res := h.must(http.StatusCreated, http.MethodPost, "/v1/members", danOwner, map[string]any{"issuer": idp.name, "sub": "dan", "roles": []string{"viewer"}})
	res.json(t, &added)
	if added.Issuer != idp.name || added.Sub != "dan" {
		t.Fatalf("added %+v", added)
	}
	if loc := res.header.Get("Location"); loc != "/v1/members/dan?issuer="+url.QueryEscape(idp.name) {
		t.Fatalf("Location = %q", loc)
	}

	// That token now acts as a viewer, not as the built-in owner dan.
	h.must(http.StatusOK, http.MethodGet, "/v1/org", extDan, nil)
	h.must(http.StatusOK, http.MethodGet, "/v1/members", extDan, nil)
	r = tokBearer(t, h, http.MethodPost, "/v1/bots", extDan, []byte(`{"name":"x","instructions":"y","grants":{}}`))
	tokRequireProblem(t, r, http.StatusForbidden)
	tokRequireAccessDenied(t, h, r, acme, externalDan)
	h.must(http.StatusForbidden, http.MethodPut, issuers, extDan, nil)
	h.must(http.StatusForbidden, http.MethodPost, "/v1/members", extDan, map[string]any{"sub": "mallory", "roles": []string{"owner"}})
	// The built-in dan is still the owner.
	h.must(http.StatusCreated, http.MethodPost, "/v1/bots", danOwner, map[string]any{"name": "x", "instructions": "y", "grants": map[string]any{}})

	// Two members named dan, addressed apart by ?issuer=.
	var m struct {
		Issuer string   `json:"issuer"`
		Roles  []string `json:"roles"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/members/dan?issuer="+url.QueryEscape(idp.name), extDan, nil).json(t, &m)
	if m.Issuer != idp.name || len(m.Roles) != 1 || m.Roles[0] != "viewer" {
		t.Fatalf("external dan = %+v", m)
	}
	m = struct {
		Issuer string   `json:"issuer"`
		Roles  []string `json:"roles"`
	}{}
	h.must(http.StatusOK, http.MethodGet, "/v1/members/dan", extDan, nil).json(t, &m)
	if m.Issuer != "" || len(m.Roles) != 1 || m.Roles[0] != "owner" {
		t.Fatalf("built-in dan = %+v", m)
	}
	var members struct {
		Items []struct {
			Issuer string `json:"issuer"`
			Sub    string `json:"sub"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/members", danOwner, nil).json(t, &members)
	if len(members.Items) != 3 {
		t.Fatalf("members = %+v", members.Items)
	}

	// An external issuer never asserts a service account, whatever it names.
	extService := idp.token(acme, "dan", identity.KindService)
	r = tokBearer(t, h, http.MethodGet, "/v1/org", extService, nil)
	tokRequireUnauthorized(t, r, extService)
	tokRequireDenial(t, h, r, http.MethodGet, "/v1/org", extService, tokDenial{reason: identity.ReasonBadClaims, org: access.PlatformScope})

	// Acme's binding does not help in Globex, even for a sub that is a
	// member there.
	extErin := idp.token(globex, "erin", identity.KindUser)
	r = tokBearer(t, h, http.MethodGet, "/v1/org", extErin, nil)
	tokRequireUnauthorized(t, r, extErin)
	tokRequireDenial(t, h, r, http.MethodGet, "/v1/org", extErin, tokDenial{reason: "issuer_not_bound", org: globex, subject: access.PrincipalSubject(idp.name, "erin")})
	h.must(http.StatusOK, http.MethodGet, "/v1/org", erin, nil)

	// Unbinding: the issuer's tokens answer 401 on the very next request.
	h.must(http.StatusNoContent, http.MethodDelete, issuers, danOwner, nil)
	r = tokBearer(t, h, http.MethodGet, "/v1/org", extDan, nil)
	tokRequireUnauthorized(t, r, extDan)
	tokRequireDenial(t, h, r, http.MethodGet, "/v1/org", extDan, tokDenial{reason: "issuer_not_bound", org: acme, subject: externalDan})
	h.must(http.StatusNotFound, http.MethodDelete, issuers, danOwner, nil)
	// Its member stays on record; a new one of it cannot be added.
	h.must(http.StatusOK, http.MethodGet, "/v1/members/dan?issuer="+url.QueryEscape(idp.name), danOwner, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/members", danOwner, map[string]any{"issuer": idp.name, "sub": "fay", "roles": []string{"viewer"}})
	// Binding again restores the member, and removal is by issuer too.
	h.must(http.StatusOK, http.MethodPut, issuers, danOwner, nil)
	h.must(http.StatusOK, http.MethodGet, "/v1/org", extDan, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/members/dan?issuer="+url.QueryEscape(idp.name), danOwner, nil)
	tokRequireUnauthorized(t, tokBearer(t, h, http.MethodGet, "/v1/org", extDan, nil), extDan)
	h.must(http.StatusOK, http.MethodGet, "/v1/org", danOwner, nil)
}
