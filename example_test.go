package palisade_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/identity"
)

// Example starts Palisade on its embedded default in a fresh data
// directory and creates an organization as the platform operator.
func Example() {
	dir, err := os.MkdirTemp("", "palisade-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	a, err := app.Open(context.Background(), app.Config{
		DataDir: dir,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	// The built-in issuer mints the platform operator's token.
	claims := identity.Claims{Kind: identity.KindPlatform}
	claims.Subject = "ops"
	token, err := a.Issuer.Mint(claims, time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orgs", strings.NewReader(`{"name":"Acme","owner_sub":"alice"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	fmt.Println(res.Status)
	// Output: 201 Created
}
