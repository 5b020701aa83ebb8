package runner

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// user resolves an image's user ("", "uid", "uid:gid", "name", "name:group")
// to ids inside the container, looking names up in the topmost /etc/passwd
// and /etc/group of the layers (lowest first). A name that is not there is
// an error; a bare uid takes its passwd group, else 0.
func user(spec string, layers []string) (uid, gid uint32, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, gid, err = lookup(u, "passwd", layers)
	if err != nil {
		return 0, 0, err
	}
	if hasGroup {
		if gid, _, err = lookup(g, "group", layers); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// lookup finds name (or a number) in the layers' /etc/FILE and returns its
// id and, for passwd, its group.
func lookup(name, file string, layers []string) (id, group uint32, err error) {
	n, numErr := strconv.ParseUint(name, 10, 32)
	for i := len(layers) - 1; i >= 0; i-- {
		// os.Root: a symbolic link in the image cannot make this read a
		// file of the node.
		root, err := os.OpenRoot(layers[i])
		if err != nil {
			continue
		}
		f, err := root.Open("etc/" + file)
		root.Close()
		if err != nil {
			continue
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Split(s.Text(), ":")
			if len(fields) < 3 {
				continue
			}
			fid, err := strconv.ParseUint(fields[2], 10, 32)
			if err != nil || (fields[0] != name && (numErr != nil || fid != n)) {
				continue
			}
			var g uint64
			if file == "passwd" && len(fields) > 3 {
				g, _ = strconv.ParseUint(fields[3], 10, 32)
			}
			return uint32(fid), uint32(g), nil
		}
		break // the topmost file decides
	}
	if numErr == nil {
		return uint32(n), 0, nil
	}
	return 0, 0, fmt.Errorf("user %q is not in the image's /etc/%s", name, file)
}
