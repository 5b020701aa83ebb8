// Package doctest makes documents that tests of the node's upgrades need.
package doctest

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/gridnode/gridnode/upgrade/doc"
)

// TamperChannel changes a signed channel document with change and keeps
// its signatures: what someone between the release engineer and a node
// can do, and what the node must refuse as a bad signature.
func TamperChannel(t testing.TB, signed []byte, change func(*doc.Channel)) []byte {
	t.Helper()
	var env doc.Envelope
	if err := json.Unmarshal(signed, &env); err != nil {
		t.Fatal(err)
	}
	p, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var c doc.Channel
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	change(&c)
	if p, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	env.Payload = base64.StdEncoding.EncodeToString(p)
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
