package store

import "unsafe"

// releaseEvery is how many bytes a load reads from the database's memory
// map between two hand-backs of its pages.
const releaseEvery = 8 << 20

// mappedPages follows the part of bbolt's memory map a load has read since
// it last handed those pages back to the kernel. bbolt maps the file
// read-only and shared, and a load touches every page once: without this,
// loading 100,000 objects (110 MiB of JSON, a 210 MiB file) kept the whole
// file resident next to the 160 MiB heap built from it, and crproxy's peak
// RSS was 3.9x the JSON (B5 in docs/benchmarks.md). Handing clean
// file-backed pages back is always safe: the next read of them faults them
// in again from the page cache.
//
// Only slices inside the map count: bbolt copies some values to the heap
// (an unaligned inline bucket), and those must never be handed back.
type mappedPages struct {
	// base and end bound the mapped database (bolt.Info's Data and the
	// transaction's Size).
	base, end uintptr

	lo    unsafe.Pointer // lowest byte read since the last release
	hi    uintptr        // one past the highest byte read
	bytes int
}

// read records that b, a slice into the memory map, was read, and hands
// pages back once enough were read.
func (m *mappedPages) read(b []byte) {
	if len(b) == 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p) < m.base || uintptr(p)+uintptr(len(b)) > m.end {
		return
	}
	if m.lo == nil || uintptr(p) < uintptr(m.lo) {
		m.lo = p
	}
	if end := uintptr(p) + uintptr(len(b)); end > m.hi {
		m.hi = end
	}
	if m.bytes += len(b); m.bytes >= releaseEvery {
		m.release()
	}
}

// release hands the pages spanned since the last release back.
func (m *mappedPages) release() {
	if m.lo != nil {
		releasePages(m.lo, m.hi-uintptr(m.lo))
	}
	m.lo, m.hi, m.bytes = nil, 0, 0
}
