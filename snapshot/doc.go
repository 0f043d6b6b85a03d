// Package snapshot is the encoding of in-memory read-model snapshots: an
// Encoder and a Decoder that keep exactly what Go holds (every exported
// field, nil apart from empty for slices, maps and pointers, times with
// their offset), and Fingerprint, which names a type's shape so that a
// snapshot written for another shape is never decoded into it.
//
// It owns bytes only: what a snapshot holds, where it is stored, how it is
// sealed and when it may be trusted are the caller's (see package app and
// projections/memory). It imports nothing of the project, and must never
// accept a type it cannot round-trip exactly (Fingerprint refuses
// unexported fields, interfaces, functions and channels).
package snapshot
