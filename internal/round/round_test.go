package round

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for in, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		1005 << 20: "1005.0 MiB", 958<<20 + 512<<10: "958.5 MiB",
		1 << 30: "1.0 GiB", 16 << 30: "16.0 GiB",
		1<<20 - 1:      "1.0 MiB", // 1023.999 KiB rounds to the next unit
		1<<30 - 40<<10: "1.0 GiB",
		1 << 60:        "1.0 EiB", 1<<64 - 1: "16.0 EiB",
	} {
		if got := Bytes(in); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestBytesShort(t *testing.T) {
	for in, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1 << 30: "1 GiB", 16 << 30: "16 GiB", 1536 << 20: "1.5 GiB", 1 << 40: "1 TiB",
		1<<30 + 1<<20: "1.0 GiB", // not whole: the decimal says so
	} {
		if got := BytesShort(in); got != want {
			t.Errorf("BytesShort(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestMillis(t *testing.T) {
	for d, want := range map[time.Duration]float64{0: 0, 12345678 * time.Nanosecond: 12.345, 2 * time.Second: 2000, 999 * time.Nanosecond: 0} {
		if got := Millis(d); got != want {
			t.Errorf("Millis(%v) = %v, want %v", d, got, want)
		}
	}
}
