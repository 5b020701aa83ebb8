// Package dashboard is the registrar's web page: totals (farms, nodes online
// and offline, capacity) from SQL aggregates, the nodes-online series as a
// server-rendered SVG chart, paginated farm and node lists, and a page per
// node. Everything is embedded (html/template, CSS); no script, no CDN, so
// the page renders in one round trip however many nodes the store holds.
package dashboard

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/internal/round"
)

//go:embed assets
var assets embed.FS

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"bytes": round.Bytes,
	"ago":   ago,
}).ParseFS(assets, "assets/*.html"))

// PageSize is how many nodes and farms a list page shows.
const PageSize = 50

type handler struct {
	st  store.Store
	now func() time.Time
	mux *http.ServeMux
}

// New returns the dashboard handler over st; now is the clock.
func New(st store.Store, now func() time.Time) http.Handler {
	h := &handler{st: st, now: now, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.index)
	h.mux.HandleFunc("GET /node/{id}", h.node)
	h.mux.Handle("GET /assets/", http.FileServerFS(assets))
	return h.mux
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	now := h.now()
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	st, err := h.st.Stats(ctx, now.Add(-api.OnlineWindow))
	if err != nil {
		http.Error(w, "reading totals: "+err.Error(), http.StatusInternalServerError)
		return
	}
	nodes, err := h.st.Nodes(ctx, store.NodeFilter{Limit: PageSize, Offset: (page - 1) * PageSize})
	if err != nil {
		http.Error(w, "listing nodes: "+err.Error(), http.StatusInternalServerError)
		return
	}
	for i := range nodes {
		nodes[i].Online = nodes[i].LastSeen != nil && now.Sub(*nodes[i].LastSeen) <= api.OnlineWindow
	}
	farms, err := h.st.Farms(ctx, store.FarmFilter{Limit: PageSize})
	if err != nil {
		http.Error(w, "listing farms: "+err.Error(), http.StatusInternalServerError)
		return
	}
	samples, err := h.st.Samples(ctx, now.Add(-24*time.Hour))
	if err != nil {
		http.Error(w, "reading samples: "+err.Error(), http.StatusInternalServerError)
		return
	}
	pages := int((st.Nodes + PageSize - 1) / PageSize)
	data := map[string]any{
		"Stats": st, "Offline": st.Nodes - st.Online, "Nodes": nodes, "Farms": farms,
		"Chart": chart(samples, now), "Page": page, "Pages": max(pages, 1),
		"Prev": page - 1, "Next": page + 1, "HasNext": page < pages, "Now": now,
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := tmpl.ExecuteTemplate(w, "index.html", data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (h *handler) node(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 63)
	if err != nil {
		http.Error(w, "invalid node id", http.StatusBadRequest)
		return
	}
	n, err := h.st.Node(r.Context(), id)
	if err != nil {
		http.Error(w, fmt.Sprintf("node %d: %v", id, err), http.StatusNotFound)
		return
	}
	now := h.now()
	n.Online = n.LastSeen != nil && now.Sub(*n.LastSeen) <= api.OnlineWindow
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := tmpl.ExecuteTemplate(w, "node.html", map[string]any{"N": n, "Now": now}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// chart draws the nodes-online series of the last 24 hours as SVG.
func chart(samples []store.Sample, now time.Time) template.HTML {
	const W, H, pad = 800.0, 200.0, 30.0
	var top int64 = 1
	for _, s := range samples {
		top = max(top, s.Total, s.Online)
	}
	start := now.Add(-24 * time.Hour)
	x := func(t time.Time) float64 { return pad + (W-2*pad)*t.Sub(start).Seconds()/(24*3600) }
	y := func(v int64) float64 { return H - pad - (H-2*pad)*float64(v)/float64(top) }
	var on, tot strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&on, "%.1f,%.1f ", x(s.At), y(s.Online))
		fmt.Fprintf(&tot, "%.1f,%.1f ", x(s.At), y(s.Total))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="chart" viewBox="0 0 %g %g" role="img" aria-label="nodes online over the last 24 hours">`, W, H)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" class="axis"/>`, pad, H-pad, W-pad, H-pad)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" class="axis"/>`, pad, pad, pad, H-pad)
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="label">%d</text>`, 2.0, pad+4, top)
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="label">-24 h</text><text x="%g" y="%g" class="label">now</text>`, pad, H-8, W-pad-20, H-8)
	if len(samples) > 0 {
		fmt.Fprintf(&b, `<polyline points="%s" class="total"/><polyline points="%s" class="online"/>`, tot.String(), on.String())
	} else {
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="label">no samples yet</text>`, W/2-40, H/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return now.Sub(*t).Truncate(time.Second).String() + " ago"
}
