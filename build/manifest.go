package build

// Manifest records every input of a build with its version and checksum and
// every output's checksum. It holds no wall-clock time, so it is reproducible
// like the outputs.
type Manifest struct {
	Version string `json:"version"`
	Flavour string `json:"flavour"`
	// ReleaseKeys are the release keys baked into the image (its node
	// accepts upgrades signed by one of them).
	ReleaseKeys     []string `json:"release_keys"`
	SourceDateEpoch int64    `json:"source_date_epoch"`
	Kernel          string   `json:"kernel"`
	Inputs          []Input  `json:"inputs"`
	Modules         []string `json:"modules"`
	Firmware        []string `json:"firmware"`
	InitramfsBytes  int64    `json:"initramfs_uncompressed_bytes"`
	NodeBinaryBytes int64    `json:"node_binary_bytes"`
	Outputs         []Output `json:"outputs"`
}

// Input is one thing a build read.
type Input struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// Output is one file a build wrote.
type Output struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}
