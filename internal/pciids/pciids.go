// Package pciids names PCI devices from pci.ids (Debian's package pci.ids,
// which the image ships at /usr/share/misc/pci.ids) without parsing all of
// it: a lookup reads the file only as far as the vendors asked for, and
// only when there is something to name. Parsing its 35,000 lines up front
// is most of a hardware probe on a small machine, and most boots name
// nothing.
package pciids

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// Paths are where pci.ids is looked for, under a root, in order.
var Paths = []string{"usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids"}

// ID is a vendor and device id, four lower-case hex digits each.
type ID struct{ Vendor, Device string }

// Name is what pci.ids says of an ID ("" where it says nothing).
type Name struct{ Vendor, Device string }

// Lookup names ids from the pci.ids under root. Ids it does not know, and
// every id when there is no pci.ids, are missing from the map.
func Lookup(root string, ids ...ID) map[ID]Name {
	out := map[ID]Name{}
	if len(ids) == 0 {
		return out
	}
	var f *os.File
	for _, p := range Paths {
		var err error
		if f, err = os.Open(filepath.Join(root, p)); err == nil {
			break
		}
	}
	if f == nil {
		return out
	}
	defer f.Close()
	want := map[string][]ID{} // vendor → ids of that vendor still to name
	for _, id := range ids {
		id = ID{strings.ToLower(id.Vendor), strings.ToLower(id.Device)}
		want[id.Vendor] = append(want[id.Vendor], id)
	}
	var cur []ID // ids of the vendor being read
	var vendor string
	sc := bufio.NewScanner(f)
	for sc.Scan() && (len(want) > 0 || cur != nil) {
		line := sc.Text()
		switch {
		case line == "" || line[0] == '#':
		case line[0] != '\t':
			// A vendor line "1af4  Red Hat, Inc.", or the class list
			// ("C 01  ...") that follows the vendors.
			cur = nil
			if strings.HasPrefix(line, "C ") {
				return out
			}
			id, name, ok := strings.Cut(line, "  ")
			if l, found := want[id]; ok && found {
				vendor, cur = name, l
				delete(want, id)
				for _, x := range l {
					out[x] = Name{Vendor: vendor}
				}
			}
		case cur != nil && len(line) > 1 && line[1] != '\t':
			// A device line "\t1000  Virtio network device"; subsystem
			// lines have two tabs.
			id, name, ok := strings.Cut(line[1:], "  ")
			for _, x := range cur {
				if ok && x.Device == id {
					out[x] = Name{Vendor: vendor, Device: name}
				}
			}
		}
	}
	return out
}
