package release

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// SumsName is the checksum file Checksums writes.
const SumsName = "SHA256SUMS"

// Checksums writes dir/SHA256SUMS: the SHA-256 of every regular file under
// dir (subfolders included, by slash-separated relative path, sorted by
// name) in the format sha256sum -c reads. An existing SHA256SUMS is
// replaced, not listed.
func Checksums(dir string) error {
	files, err := releaseFiles(dir, false)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, name := range files {
		sum, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return fmt.Errorf("release: checksums: %w", err)
		}
		fmt.Fprintf(&buf, "%s  %s\n", sum, name)
	}
	if err := os.WriteFile(filepath.Join(dir, SumsName), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("release: checksums: %w", err)
	}
	return nil
}

// releaseFiles lists the regular files under dir, slash-separated and
// sorted, with or without SHA256SUMS at the top. Symbolic links and other special
// files are errors: a release is plain files.
func releaseFiles(dir string, withSums bool) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file; a release folder holds plain files only", p)
		}
		if withSums || rel != SumsName {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	sort.Strings(files)
	return files, nil
}
