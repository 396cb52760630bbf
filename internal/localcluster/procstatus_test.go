package localcluster

import (
	"os"
	"testing"
	"time"
)

func TestReadProcStatus(t *testing.T) {
	s, err := ReadProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB <= 0 || s.PeakRSSKiB < s.RSSKiB || s.Threads <= 0 {
		t.Errorf("implausible status of this test process: %+v", s)
	}
	if _, err := ReadProcStatus(-1); err == nil {
		t.Error("no error for a process that cannot exist")
	}
}

// This process's CPU time grows while it works.
func TestReadProcCPU(t *testing.T) {
	before, err := ReadProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
	}
	after, err := ReadProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 100*time.Millisecond {
		t.Errorf("200 ms of work used %s of CPU", d)
	}
}
