package store

import (
	"os"
	"syscall"
	"unsafe"
)

// releasePages tells the kernel the n bytes of the memory map at p are not
// needed (madvise MADV_DONTNEED), from the page that holds p.
func releasePages(p unsafe.Pointer, n uintptr) {
	page := uintptr(os.Getpagesize())
	offset := uintptr(p) % page
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, -int(offset))), n+offset), syscall.MADV_DONTNEED)
}
