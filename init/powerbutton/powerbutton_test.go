package powerbutton

import (
	"encoding/binary"
	"testing"
)

func TestCanPower(t *testing.T) {
	// QEMU's ACPI power button and a keyboard without a power key.
	if !CanPower("10000000000000 0\n") {
		t.Error("power button not recognised")
	}
	if CanPower("ffffffff 0 fffffffffffffffe\n") {
		t.Error("keyboard bitmap without bit 116 taken for a power button")
	}
	if CanPower("zz") {
		t.Error("garbage accepted")
	}
}

func TestIsPress(t *testing.T) {
	ev := make([]byte, eventSize)
	binary.LittleEndian.PutUint16(ev[16:], evKey)
	binary.LittleEndian.PutUint16(ev[18:], keyPower)
	binary.LittleEndian.PutUint32(ev[20:], 1)
	if !IsPress(ev) {
		t.Error("press not seen")
	}
	binary.LittleEndian.PutUint32(ev[20:], 0)
	if IsPress(ev) {
		t.Error("release taken for a press")
	}
}
