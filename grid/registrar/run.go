package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/postgres"
	"github.com/gridnode/gridnode/grid/registrar/store/sqlite"
)

// OpenStore opens db: a postgres:// or postgresql:// URL, or else a SQLite
// file path (created if missing). Migrations are applied.
func OpenStore(ctx context.Context, db string) (store.Store, error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, db)
}

// Options are what `gridnode registrar` takes on its command line.
type Options struct {
	Listen string // default 127.0.0.1:8080
	DB     string // default gridnode-registrar.db
	Config        // Store is opened from DB
	// Ready, if set, receives the listening address once serving.
	Ready func(addr string)
}

// Run opens the store, serves until ctx is cancelled, then shuts down in
// order: stop accepting and finish in-flight requests, write the pending
// uptime batch, close the store.
func Run(ctx context.Context, o Options) error {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.DB == "" {
		o.DB = "gridnode-registrar.db"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	st, err := OpenStore(ctx, o.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (is another registrar running? choose another --listen)", o.Listen, err)
	}
	o.Store = st
	srv := New(o.Config)
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	o.Log.Info("registrar serving", "addr", ln.Addr().String(), "db", redactDB(o.DB), "strict_auth", o.StrictAuth, "admin_twin", o.AdminTwin)
	if len(o.ReleaseKeys) == 0 {
		o.Log.Warn("no --release-key: channel documents are checked for form only, not for a release key's signature (nodes still check theirs)")
	} else {
		o.Log.Info("channel documents must be signed by a release key", "release_keys", len(o.ReleaseKeys))
	}
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	select {
	case err = <-errc:
		srv.Close()
		return fmt.Errorf("serving on %s: %w", o.Listen, err)
	case <-ctx.Done():
	}
	o.Log.Info("registrar shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		o.Log.Warn("http shutdown", "err", err)
	}
	if err := srv.Close(); err != nil {
		o.Log.Warn("flushing uptime batch", "err", err)
	}
	o.Log.Info("registrar stopped")
	return nil
}

func redactDB(db string) string {
	if i := strings.Index(db, "@"); i >= 0 && strings.Contains(db, "://") {
		return db[:strings.Index(db, "://")+3] + "…" + db[i:]
	}
	return db
}
