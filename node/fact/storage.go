package fact

// Storage is the fact "storage", published by the storage module.
type Storage struct {
	// Cache is nil when the node has no cache disk (it then runs with
	// nothing persisted).
	Cache *Cache `json:"cache"`
	// Disks says, for every disk of the hardware fact, whether the node
	// owns it and why or why not.
	Disks []DiskState `json:"disks"`
	// Error is what went wrong preparing or mounting a cache, "" when
	// nothing did.
	Error string `json:"error,omitempty"`
}

// Cache is the mounted cache file system.
type Cache struct {
	Disk      string `json:"disk"`
	Partition string `json:"partition"`
	Mount     string `json:"mount"`
	Label     string `json:"label"`
	// Fresh is true when this boot created the file system.
	Fresh bool `json:"fresh"`
}

// DiskState says whether and why the node uses a disk.
type DiskState struct {
	Name   string `json:"name"`
	Serial string `json:"serial"`
	Used   bool   `json:"used"`
	Reason string `json:"reason"`
}
