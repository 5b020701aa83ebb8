package iso

import (
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// gptBytes is one GPT copy: header sector and 128 entries of 128 bytes.
const gptBytes = 512 + 128*128

// espType is the EFI system partition type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
var espType = [16]byte{0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}

// basicDataType is Microsoft's basic data partition type
// EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, which Windows and macOS mount.
var basicDataType = [16]byte{0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7}

type gpt struct{ primary, backup []byte }

// guid makes a version-4-shaped GUID from hash bytes: fixed per input.
func guid(b []byte) [16]byte {
	var g [16]byte
	copy(g[:], b)
	g[7] = g[7]&0x0F | 0x40
	g[8] = g[8]&0x3F | 0x80
	return g
}

// newGPT returns the primary (for LBA 1) and backup (for the disk's last 33
// sectors) GPT with one partition of type typ from first to last (inclusive).
func newGPT(seed [32]byte, sectors, first, last int64, typ [16]byte, name string) gpt {
	entries := make([]byte, 128*128)
	e := entries[0:128]
	copy(e[0:16], typ[:])
	pg := guid(seed[16:32])
	copy(e[16:32], pg[:])
	binary.LittleEndian.PutUint64(e[32:], uint64(first))
	binary.LittleEndian.PutUint64(e[40:], uint64(last))
	for i, c := range utf16.Encode([]rune(name)) {
		binary.LittleEndian.PutUint16(e[56+2*i:], c)
	}
	entCRC := crc32.ChecksumIEEE(entries)
	dg := guid(seed[8:24])
	header := func(current, backup, entLBA int64) []byte {
		h := make([]byte, 512)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(current))
		binary.LittleEndian.PutUint64(h[32:], uint64(backup))
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], uint64(sectors-34))
		copy(h[56:72], dg[:])
		binary.LittleEndian.PutUint64(h[72:], uint64(entLBA))
		binary.LittleEndian.PutUint32(h[80:], 128)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], entCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	lastLBA := sectors - 1
	primary := append(header(1, lastLBA, 2), entries...)
	backup := append(append([]byte(nil), entries...), header(lastLBA, 1, lastLBA-32)...)
	return gpt{primary: primary, backup: backup}
}

// protective turns the hybrid MBR's partition table into a GPT protective
// one: a single 0xEE partition over the whole disk. The boot code stays.
func protective(mbr []byte, sectors int64) {
	clear(mbr[446:510])
	partition(mbr[446:], 0x00, 0xEE, 1, sectors-1)
}
