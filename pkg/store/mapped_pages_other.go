//go:build !linux

package store

import "unsafe"

// releasePages does nothing where madvise is not used.
func releasePages(unsafe.Pointer, uintptr) {}
