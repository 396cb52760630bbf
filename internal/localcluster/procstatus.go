package localcluster

import (
	"fmt"
	"os"
	"strings"
	"time"
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

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// ReadProcCPU reads the CPU time pid has used so far, user and system
// (/proc/<pid>/stat utime and stime; Linux).
func ReadProcCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after it are counted from its closing parenthesis.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	// utime and stime are fields 14 and 15; fields[0] is field 3.
	if len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	var utime, stime int64
	if _, err := fmt.Sscanf(fields[11]+" "+fields[12], "%d %d", &utime, &stime); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
