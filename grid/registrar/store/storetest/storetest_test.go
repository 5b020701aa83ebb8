package storetest

import (
	"context"
	"testing"

	"github.com/gridnode/gridnode/grid/registrar/store/sqldb"
)

func TestConformance(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) { Run(t, o.Open) })
	}
}

// TestMigrationsIdempotent reopens a migrated database: nothing is applied twice.
func TestMigrationsIdempotent(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			st := o.Open(t)
			st.Close()
			st = o.Reopen(t)
			v, err := st.(*sqldb.DB).SchemaVersion(context.Background())
			if err != nil || v != 1 {
				t.Fatalf("schema version = %d, %v; want 1", v, err)
			}
		})
	}
}
