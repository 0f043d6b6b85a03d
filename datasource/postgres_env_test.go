package datasource

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPostgresIgnoresTheServersOwnTLSSettings: PGSSLCERT, PGSSLKEY and
// PGSSLROOTCERT configure the server's connections to its own databases.
// A tenant's source is never given that client certificate (nor, when the
// key file is missing, an error naming its path). Not parallel: it sets
// the environment.
func TestPostgresIgnoresTheServersOwnTLSSettings(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	writeClientCertificate(t, certPath, keyPath)
	cfg := Config{Kind: Postgres, Host: "db.tenant.example", Database: "sales", User: "reader",
		Params: map[string]string{"sslmode": "require"}}

	t.Setenv("PGSSLCERT", certPath)
	t.Setenv("PGSSLKEY", keyPath)
	t.Setenv("PGSSLROOTCERT", certPath)
	e := New(Options{})
	t.Cleanup(func() { e.Close() })
	src, err := e.openPostgres(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer src.close()
	cc := src.(*pgSource).pool.Config().ConnConfig
	configs := []*tlsSeen{{"first", cc.TLSConfig != nil, cc.TLSConfig != nil && len(cc.TLSConfig.Certificates) > 0,
		cc.TLSConfig != nil && cc.TLSConfig.RootCAs != nil}}
	for _, fb := range cc.Fallbacks {
		configs = append(configs, &tlsSeen{"fallback", fb.TLSConfig != nil, fb.TLSConfig != nil && len(fb.TLSConfig.Certificates) > 0,
			fb.TLSConfig != nil && fb.TLSConfig.RootCAs != nil})
	}
	if !configs[0].tls {
		t.Fatal("sslmode=require without TLS")
	}
	for _, c := range configs {
		if c.certificate {
			t.Errorf("%s connection presents the server's own client certificate", c.name)
		}
		if c.roots {
			t.Errorf("%s connection trusts the server's own CA file", c.name)
		}
	}

	// A key file that is not there: no error naming it.
	t.Setenv("PGSSLKEY", filepath.Join(dir, "missing.key"))
	src2, err := e.openPostgres(cfg)
	if err != nil {
		t.Fatalf("open with the server's key file missing: %v", err)
	}
	src2.close()
}

type tlsSeen struct {
	name                    string
	tls, certificate, roots bool
}

func writeClientCertificate(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "palisade-readmodel-app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
