package ext4

const (
	maxUint16 uint64 = 1<<16 - 1
)
