//go:build !linux

package extract

// limitAddressSpace does nothing outside Linux: the runtime's memory limit
// and the parent's timeout are the bounds there.
func limitAddressSpace(uint64) error { return nil }
