package localcluster

import (
	"fmt"
	"os"
	"strings"
)

// ProcStatus is what a test reads of a running process's footprint, from
// /proc/<pid>/status (Linux).
type ProcStatus struct {
	// RSSKiB is the resident set now (VmRSS).
	RSSKiB int
	// PeakRSSKiB is the largest resident set so far (VmHWM).
	PeakRSSKiB int
	// FileRSSKiB is the part of RSSKiB that is files mapped in (RssFile),
	// such as a bbolt database.
	FileRSSKiB int
	// Threads is the number of OS threads.
	Threads int
}

// ReadProcStatus reads pid's footprint.
func ReadProcStatus(pid int) (ProcStatus, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStatus{}, err
	}
	var s ProcStatus
	fields := map[string]*int{"VmRSS:": &s.RSSKiB, "VmHWM:": &s.PeakRSSKiB, "RssFile:": &s.FileRSSKiB, "Threads:": &s.Threads}
	for _, line := range strings.Split(string(data), "\n") {
		for prefix, v := range fields {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				_, _ = fmt.Sscanf(rest, "%d", v)
			}
		}
	}
	if s.RSSKiB == 0 {
		return s, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return s, nil
}
