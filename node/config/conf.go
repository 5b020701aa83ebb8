package config

import (
	"fmt"
	"strings"
)

// A boot medium's gridnode.conf is lines of key=value, keys as on the kernel
// command line without "gridnode." (which may be written all the same);
// blank lines and # comments are skipped. This file is the one reader of
// that format: PID 1 applies it, `gridnode image set` edits it.

// ConfLine reads one line of a gridnode.conf: its key (without the
// "gridnode." prefix) and its value, both trimmed. ok is false for a blank
// line or a comment; err says why a line is neither a comment nor key=value.
func ConfLine(line string) (key, value string, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", "", false, nil
	}
	k, v, found := strings.Cut(line, "=")
	if !found {
		return "", "", false, fmt.Errorf("%q is not key=value", line)
	}
	return strings.TrimPrefix(strings.TrimSpace(k), "gridnode."), strings.TrimSpace(v), true, nil
}

// ApplyKV applies a gridnode.conf text (file names it in errors) to n and
// checks the result; the first bad line is an error "file:line: why".
func ApplyKV(n *Node, file, text string) error {
	if err := applyKV(n, file, text, nil); err != nil {
		return err
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// ApplyKVSkipping applies a gridnode.conf text line by line, as a node must
// boot whatever the file says: a line that is not key=value, has an unknown
// key or would make the configuration invalid is passed to skipped (as
// "file:line: why") and left out.
func ApplyKVSkipping(n *Node, file, text string, skipped func(error)) {
	applyKV(n, file, text, skipped)
}

// applyKV applies text's settings in order. Without skipped it stops at the
// first bad line; with it, each setting must also leave n valid.
func applyKV(n *Node, file, text string, skipped func(error)) error {
	for i, line := range strings.Split(text, "\n") {
		k, v, ok, err := ConfLine(line)
		if !ok && err == nil {
			continue
		}
		if err == nil {
			try := *n
			err = Set(&try, k, v)
			if err == nil && skipped != nil {
				err = try.Validate()
			}
			if err == nil {
				*n = try
				continue
			}
		}
		err = fmt.Errorf("%s:%d: %w", file, i+1, err)
		if skipped == nil {
			return err
		}
		skipped(err)
	}
	return nil
}
