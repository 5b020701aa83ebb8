package build

import (
	"sort"

	"github.com/gridnode/gridnode/build/media"
)

// A FormatWriter turns the kernel-format parts into one boot medium in dir
// and returns the paths it wrote.
type FormatWriter func(in media.Input, dir string) ([]string, error)

// Formats are the output formats beyond "kernel", by name.
var Formats = map[string]FormatWriter{}

// FormatNames lists every format, sorted.
func FormatNames() []string {
	l := []string{"kernel"}
	for f := range Formats {
		l = append(l, f)
	}
	sort.Strings(l)
	return l
}

func (b *builder) mediaInput() media.Input {
	return media.Input{
		Kernel:  b.res.Kernel,
		Initrd:  b.res.Initramfs,
		Cmdline: b.res.Cmdline,
		Version: b.o.Spec.Version,
		Epoch:   b.o.Epoch,
	}
}
