package identity

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintServiceToken issues the one token of a service account: kind
// service, sub the account id, jti tokenID (which the service account
// record keeps, so a token not issued at creation never resolves), expiring
// at expiresAt.
func (i *Issuer) MintServiceToken(orgID, accountID, tokenID string, expiresAt time.Time) (string, error) {
	now := i.now().Truncate(time.Second)
	if !expiresAt.After(now) {
		return "", fmt.Errorf("identity: service token would already be expired")
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   accountID,
			ID:        tokenID,
			Issuer:    i.name,
			Audience:  jwt.ClaimStrings{i.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expiresAt),
		},
		Org:  orgID,
		Kind: KindService,
	}
	if err := c.validate(true, true); err != nil {
		return "", fmt.Errorf("identity: mint service token: %w", err)
	}
	set := i.set.Load()
	token := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	token.Header["kid"] = set.kid
	return token.SignedString(set.private)
}
