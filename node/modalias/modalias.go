// Package modalias reads the module index the image builder writes beside
// the kernel modules (modules.alias, modules.softdep) and matches device
// modaliases against it the way modprobe does: PID 1 loads drivers with it,
// the hardware module names devices left without one.
package modalias

import (
	"bufio"
	"io"
	"sort"
	"strings"
)

// Aliases is a parsed modules.alias: glob patterns of device modaliases (and
// plain names such as fs-vfat) mapped to module names, matched the way
// modprobe matches them (fnmatch).
type Aliases struct {
	// byKey holds patterns whose part before the first ':' is literal,
	// under that part ("pci", "usb", "virtio", "fs-vfat"), so a modalias
	// is compared only with patterns of its own bus.
	byKey map[string][]alias
	// wild holds the patterns whose bus part has a wildcard.
	wild []alias
}

type alias struct {
	pattern, module string
}

// ParseAliases reads modules.alias ("alias PATTERN MODULE" lines; comments
// and other lines are skipped).
func ParseAliases(r io.Reader) (*Aliases, error) {
	a := &Aliases{byKey: map[string][]alias{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "alias" {
			continue
		}
		al := alias{pattern: f[1], module: f[2]}
		if k := key(al.pattern); strings.ContainsAny(k, "*?[") {
			a.wild = append(a.wild, al)
		} else {
			a.byKey[k] = append(a.byKey[k], al)
		}
	}
	return a, sc.Err()
}

func key(s string) string {
	k, _, _ := strings.Cut(s, ":")
	return k
}

// Match returns the modules whose patterns match modalias, sorted, without
// duplicates. Like modprobe, every matching module is returned, not only
// the first.
func (a *Aliases) Match(modalias string) []string {
	seen := map[string]bool{}
	var mods []string
	try := func(l []alias) {
		for _, al := range l {
			if !seen[al.module] && fnmatch(al.pattern, modalias) {
				seen[al.module] = true
				mods = append(mods, al.module)
			}
		}
	}
	try(a.byKey[key(modalias)])
	try(a.wild)
	sort.Strings(mods)
	return mods
}

// fnmatch reports whether s matches the shell pattern p: * any run of
// characters (slashes included, as fnmatch without FNM_PATHNAME), ? one
// character, [abc] [a-z] [!a-z] [^a-z] one character of a class, \x a literal x.
func fnmatch(p, s string) bool {
	// Iterative matching with backtracking to the last star: linear for
	// patterns with one star, and never exponential.
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) || px < len(p) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				if sx < len(s) {
					if ok, n, valid := matchClass(p[px:], s[sx]); valid {
						if ok {
							px += n
							sx++
							continue
						}
						break
					}
				}
				// An unterminated class is a literal '['.
				if sx < len(s) && s[sx] == '[' {
					px++
					sx++
					continue
				}
			case '\\':
				if px+1 < len(p) && sx < len(s) && s[sx] == p[px+1] {
					px += 2
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if starP >= 0 && starS < len(s) {
			starS++
			px, sx = starP+1, starS
			continue
		}
		return false
	}
	return true
}

// matchClass matches c against the class at the start of p ("[...]"). It
// returns whether c is in the class, the class's length, and whether p
// starts with a complete class at all.
func matchClass(p string, c byte) (match bool, n int, valid bool) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return match != negate, i + 1, true
		}
		first = false
		lo := p[i]
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			i += 2
		}
		if lo <= c && c <= hi {
			match = true
		}
		i++
	}
	return false, 0, false
}

// Softdeps is a parsed modules.softdep: modules to load before (pre) and
// after (post) a module.
type Softdeps map[string]Softdep

// Softdep lists one module's soft dependencies.
type Softdep struct{ Pre, Post []string }

// ParseSoftdeps reads modules.softdep ("softdep MOD pre: A B post: C" lines).
func ParseSoftdeps(r io.Reader) (Softdeps, error) {
	sd := Softdeps{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "softdep" {
			continue
		}
		mod := Normalize(f[1])
		d := sd[mod]
		var into *[]string
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				into = &d.Pre
			case "post:":
				into = &d.Post
			default:
				if into != nil {
					*into = append(*into, w)
				}
			}
		}
		sd[mod] = d
	}
	return sd, sc.Err()
}

// normalize spells a module name the way the kernel lists it in
// /proc/modules: underscores, not dashes.
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }
