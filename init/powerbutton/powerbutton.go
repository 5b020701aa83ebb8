// Package powerbutton turns a press of the machine's power button (ACPI,
// as `virsh shutdown` or QEMU's system_powerdown press it) into an orderly
// power-off. There is no acpid or logind on a node: PID 1 reads the input
// devices that can send KEY_POWER itself. The kernel needs the button and
// evdev modules, which coldplug loads when the image has them.
package powerbutton

import (
	"context"
	"encoding/binary"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	evKey    = 1
	keyPower = 116
	// eventSize is sizeof(struct input_event) on 64-bit: a timeval, type,
	// code and value.
	eventSize = 24
)

// CanPower says whether an input device's key capability bitmap (the
// hexadecimal words of /sys/class/input/eventN/device/capabilities/key,
// most significant first) includes KEY_POWER.
func CanPower(caps string) bool {
	words := strings.Fields(caps)
	n := new(big.Int)
	for _, w := range words {
		v, ok := new(big.Int).SetString(w, 16)
		if !ok {
			return false
		}
		n.Lsh(n, 64)
		n.Or(n, v)
	}
	return n.Bit(keyPower) == 1
}

// IsPress says whether a raw input event is KEY_POWER going down.
func IsPress(ev []byte) bool {
	if len(ev) < eventSize {
		return false
	}
	typ := binary.LittleEndian.Uint16(ev[16:18])
	code := binary.LittleEndian.Uint16(ev[18:20])
	value := int32(binary.LittleEndian.Uint32(ev[20:24]))
	return typ == evKey && code == keyPower && value == 1
}

// Watch calls pressed whenever a power button is pressed, until ctx is done.
// It looks for new input devices every few seconds, since drivers are loaded
// while it runs. sys and dev are /sys and /dev.
func Watch(ctx context.Context, sys, dev string, pressed func()) {
	watching := map[string]bool{}
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		ents, _ := filepath.Glob(filepath.Join(sys, "class/input/event*"))
		for _, e := range ents {
			name := filepath.Base(e)
			if watching[name] {
				continue
			}
			caps, err := os.ReadFile(filepath.Join(e, "device/capabilities/key"))
			if err != nil || !CanPower(string(caps)) {
				continue
			}
			f, err := os.Open(filepath.Join(dev, "input", name))
			if err != nil {
				continue
			}
			watching[name] = true
			go func() {
				<-ctx.Done()
				f.Close()
			}()
			go read(f, pressed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func read(f *os.File, pressed func()) {
	buf := make([]byte, eventSize*64)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		for i := 0; i+eventSize <= n; i += eventSize {
			if IsPress(buf[i : i+eventSize]) {
				pressed()
			}
		}
	}
}
