// Mint a private-origin stream URL with Go's standard library only.
//
// Usage (the secret comes from the environment, never the command line):
//
//	ORIGIN_SECRET=... [ORIGIN_KEY_ID=2026-02] [ORIGIN_BASE_URL=http://nas:8080] \
//	    go run mint.go LOCATOR [BACKEND]
//
// Prints the token, or the stream URL when ORIGIN_BASE_URL is set. The expiry
// is one hour from now rounded up to the next 5 minutes (ORIGIN_EXP overrides it).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ"`
}

type claims struct {
	Locator string `json:"locator"`
	Backend string `json:"backend,omitempty"`
	Exp     int64  `json:"exp"`
}

// MintOriginToken returns a JWS compact token, HS256: header.claims.HMAC-SHA256(secret, header.claims).
func MintOriginToken(secret, locator, backend, keyID string, expiresAt int64) (string, error) {
	h, err := json.Marshal(header{Alg: "HS256", Kid: keyID, Typ: "JWT"})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims{Locator: locator, Backend: backend, Exp: expiresAt})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding // unpadded base64url
	signingInput := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	mac := hmac.New(sha256.New, []byte(secret)) // a Go string holds the secret's UTF-8 bytes
	mac.Write([]byte(signingInput))
	return signingInput + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// RoundedExpiry is at least ttl seconds from now, rounded up so that re-minted URLs repeat within a bucket.
func RoundedExpiry(now time.Time, ttl, bucket int64) int64 {
	exp := now.Add(time.Duration(ttl)*time.Second + time.Second - time.Nanosecond).Unix() // whole seconds, rounded up
	return (exp + bucket - 1) / bucket * bucket
}

func main() {
	secret := os.Getenv("ORIGIN_SECRET")
	if len(os.Args) < 2 || len(os.Args) > 3 || secret == "" {
		fmt.Fprintln(os.Stderr, "usage: ORIGIN_SECRET=... go run mint.go LOCATOR [BACKEND]")
		os.Exit(2)
	}
	backend := ""
	if len(os.Args) == 3 {
		backend = os.Args[2]
	}
	exp := RoundedExpiry(time.Now(), 3600, 300)
	if s := os.Getenv("ORIGIN_EXP"); s != "" {
		var err error
		if exp, err = strconv.ParseInt(s, 10, 64); err != nil {
			fmt.Fprintln(os.Stderr, "ORIGIN_EXP must be Unix seconds")
			os.Exit(2)
		}
	}
	token, err := MintOriginToken(secret, os.Args[1], backend, os.Getenv("ORIGIN_KEY_ID"), exp)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if base := os.Getenv("ORIGIN_BASE_URL"); base != "" {
		fmt.Println(strings.TrimRight(base, "/") + "/api/private-origin/stream/" + token)
		return
	}
	fmt.Println(token)
}
