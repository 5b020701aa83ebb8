// Package fat16 provides utilities to interact with, manipulate and create a FAT16
// filesystem on a block device or disk image.
//
// It builds on the fat12 package, which provides all shared BPB types, the FATTable
// interface, and the complete set of high-level filesystem methods.
package fat16
